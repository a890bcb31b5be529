"""The funding invariants, for the audit (``stakehouse audit``, ``GET /admin/audit``): every withdrawal's
entries match its state, and pending withdrawals' holds are within the funding accounts' locked
balances."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, bindparam, func, select

from stakehouse.db.tables import deposits, ledger_accounts, withdrawals
from stakehouse.funding import withdrawal_rules as rules
from stakehouse.ledger.audit import AuditCheck, CheckResult
from stakehouse.ledger.rules import FUNDING

# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md).
_INTERNAL_CREDITS = (select(deposits.c.from_wd_id, func.count().label("n"), func.min(deposits.c.amt).label("amt"))
                     .where(deposits.c.type == 3, deposits.c.from_wd_id != "").group_by(deposits.c.from_wd_id))
_WITHDRAWALS = select(withdrawals.c.wd_id, withdrawals.c.state, withdrawals.c.to_uid, withdrawals.c.amt,
                      withdrawals.c.hold_entry_id, withdrawals.c.final_entry_id, withdrawals.c.next_at)
_PENDING = (select(withdrawals.c.uid, withdrawals.c.ccy, withdrawals.c.amt, withdrawals.c.fee)
            .where(withdrawals.c.next_at.is_not(None)))
_FUNDING_LOCKED = select(ledger_accounts.c.locked).where(
    ledger_accounts.c.owner == bindparam("owner"), ledger_accounts.c.acct_type == FUNDING,
    ledger_accounts.c.ccy == bindparam("ccy"))


def _entries_in_step(conn: Connection) -> list[CheckResult]:
    """Every on-chain withdrawal has its hold, and a final entry exactly when it is final; every
    internal one is a success with its entry and exactly one matching type-3 deposit."""
    result = CheckResult("withdrawals: entries match their states", 0)
    credited = {r.from_wd_id: (r.n, r.amt) for r in conn.execute(_INTERNAL_CREDITS)}
    for w in conn.execute(_WITHDRAWALS):
        result.checked += 1
        final = w.state in rules.FINAL
        if w.to_uid is None:
            if w.hold_entry_id is None or final != (w.final_entry_id is not None) or final == (w.next_at is not None):
                result.violations.append(f"withdrawal {w.wd_id} in state {w.state}: hold {w.hold_entry_id}, final "
                                         f"{w.final_entry_id}, next {w.next_at}")
            continue
        n, amt = credited.get(str(w.wd_id), (0, None))
        if w.state != rules.SUCCESS or w.final_entry_id is None or n != 1 or Decimal(amt) != w.amt:
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
