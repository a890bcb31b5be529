"""The funding invariants, for the audit (``stakehouse audit``, ``GET /admin/audit``): every withdrawal's
entries match its state, and pending withdrawals' holds are within the funding accounts' locked
balances."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, String, bindparam, cast, func, select

from stakehouse.db.tables import deposits, ledger_accounts, withdrawals
from stakehouse.funding import withdrawal_rules as rules
from stakehouse.ledger.audit import AuditCheck, CheckResult
from stakehouse.ledger.rules import FUNDING

# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md). The withdrawals' check
# is made by the database, which returns only the withdrawals that break it (on SQLite equal money is equal
# canonical text); Python checks those again and words the message.
_W = withdrawals.c
_INTERNAL_CREDITS = (select(deposits.c.from_wd_id, func.count().label("n"), func.min(deposits.c.amt).label("amt"))
                     .where(deposits.c.type == 3, deposits.c.from_wd_id != "").group_by(deposits.c.from_wd_id)
                     .subquery("credited"))
_CREDITED = _INTERNAL_CREDITS.c
_FINAL = _W.state.in_(sorted(rules.FINAL))
_WITHDRAWAL_COUNT = select(func.count()).select_from(withdrawals)
_WITHDRAWALS_OFF = (
    select(_W.wd_id, _W.state, _W.to_uid, _W.amt, _W.hold_entry_id, _W.final_entry_id, _W.next_at,
           _CREDITED.n, _CREDITED.amt.label("credited"))
    .select_from(withdrawals.outerjoin(_INTERNAL_CREDITS, _CREDITED.from_wd_id == cast(_W.wd_id, String)))
    .where(
        (_W.to_uid.is_(None) & (_W.hold_entry_id.is_(None) | (_FINAL != _W.final_entry_id.is_not(None))
                                | (_FINAL == _W.next_at.is_not(None))))
        | (_W.to_uid.is_not(None) & ((_W.state != rules.SUCCESS) | _W.final_entry_id.is_(None)
                                     | (func.coalesce(_CREDITED.n, 0) != 1) | (_CREDITED.amt != _W.amt))))
    .order_by(_W.wd_id))
_PENDING = (select(withdrawals.c.uid, withdrawals.c.ccy, withdrawals.c.amt, withdrawals.c.fee)
            .where(withdrawals.c.next_at.is_not(None)))
_FUNDING_LOCKED = select(ledger_accounts.c.locked).where(
    ledger_accounts.c.owner == bindparam("owner"), ledger_accounts.c.acct_type == FUNDING,
    ledger_accounts.c.ccy == bindparam("ccy"))


def _entries_in_step(conn: Connection) -> list[CheckResult]:
    """Every on-chain withdrawal has its hold, and a final entry exactly when it is final; every
    internal one is a success with its entry and exactly one matching type-3 deposit."""
    result = CheckResult("withdrawals: entries match their states", conn.execute(_WITHDRAWAL_COUNT).scalar_one())
    for w in conn.execute(_WITHDRAWALS_OFF):
        final = w.state in rules.FINAL
        if w.to_uid is None:
            if w.hold_entry_id is None or final != (w.final_entry_id is not None) or final == (w.next_at is not None):
                result.violations.append(f"withdrawal {w.wd_id} in state {w.state}: hold {w.hold_entry_id}, final "
                                         f"{w.final_entry_id}, next {w.next_at}")
            continue
        n = w.n or 0
        if w.state != rules.SUCCESS or w.final_entry_id is None or n != 1 or Decimal(w.credited) != w.amt:
            result.violations.append(f"internal withdrawal {w.wd_id} in state {w.state}: entry {w.final_entry_id}, "
                                     f"{n} deposits")
    return [result]


def _holds_covered(conn: Connection) -> list[CheckResult]:
    """The funding accounts' locked balances cover the pending withdrawals' holds."""
    result = CheckResult("withdrawals: pending holds within funding locked balances", 0)
    held: dict[tuple[str, str], Decimal] = {}
    for w in conn.execute(_PENDING):
        held[(w.uid, w.ccy)] = held.get((w.uid, w.ccy), Decimal(0)) + w.amt + w.fee
    for (uid, ccy), total in sorted(held.items()):
        result.checked += 1
        locked = conn.execute(_FUNDING_LOCKED, {"owner": f"u:{uid}", "ccy": ccy}).scalar_one_or_none()
        if locked is None or locked < total:
            result.violations.append(f"u:{uid} {ccy}: pending withdrawals hold {total}, funding locked {locked}")
    return [result]


CHECKS: tuple[AuditCheck, ...] = (_entries_in_step, _holds_covered)
