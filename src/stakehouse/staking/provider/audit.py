"""Audit checks of provider staking, passed to :func:`stakehouse.ledger.audit.run_audit`:

* every staking balance equals what its history says: deposits + interest - what was paid back
  (``available + locked``), and its locked part equals the unstakes not yet paid;
* every interest run's total and staker count equal its ``Interest`` events;
* every unstake's ``paid`` equals its ``RedeemPayment`` events (instant ones: their amount).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from stakehouse.db.tables import job_run_plans, ledger_accounts, provider_accrual_runs, provider_events
from stakehouse.db.types import Money
from stakehouse.ledger.audit import CheckResult, money_add, money_below, money_sum
from stakehouse.ledger.rules import STAKING_BASE
from stakehouse.money import ZERO, to_plain
from stakehouse.staking.provider.service import INTEREST_JOB

_IN = ("Deposit", "Interest", "AdminCreditAdjustment")
_OUT = ("AdminDebitAdjustment",)


# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md). The balance and
# unstake checks return what is off, not every staker: the database compares (exactly: ``money_add``,
# ``money_below``; on SQLite equal money is equal canonical text), and Python computes the message.
_E, _A = provider_events.c, ledger_accounts.c
_NOTHING = literal(ZERO, Money())
_REDEEMS = ("Redeem", "AdminRedeem")


def _part(types: tuple[str, ...], column: ColumnElement[Decimal]) -> ColumnElement[Decimal]:
    return func.coalesce(money_sum(case((_E.type.in_(types), column))), _NOTHING, type_=Money())


#: Per (uid, provider, ccy): what came in, what an adjustment took out, what unstakes asked for and paid.
_HISTORY = (select(_E.uid, _E.provider_no, _E.ccy, _part(_IN, _E.amount).label("came_in"),
                   _part(_OUT, _E.amount).label("taken_out"), _part(_REDEEMS, _E.amount).label("unstaked"),
                   _part(_REDEEMS, func.coalesce(_E.paid, _NOTHING)).label("paid"))
            .group_by(_E.uid, _E.provider_no, _E.ccy).subquery("history"))
_H = _HISTORY.c
_STAKING_COUNT = select(func.count()).select_from(ledger_accounts).where(_A.acct_type > STAKING_BASE)
_OF_ACCOUNT = (_H.uid == _A.uid) & (_A.acct_type == _H.provider_no + STAKING_BASE) & (_H.ccy == _A.ccy)
_PARTS = ("came_in", "taken_out", "unstaked", "paid")


def _history(name: str) -> ColumnElement[Decimal]:
    return func.coalesce(_H[name], _NOTHING, type_=Money())


#: total = in - out - paid and locked = unstaked - paid, as sums (no subtraction: SQLite's is not exact).
_ACCOUNTS_OFF = (select(_A.uid, _A.acct_type, _A.ccy, _A.available, _A.locked,
                        *(_history(name).label(name) for name in _PARTS))
                 .select_from(ledger_accounts.outerjoin(_HISTORY, _OF_ACCOUNT))
                 .where(_A.acct_type > STAKING_BASE,
                        (money_add(money_add(money_add(_A.available, _A.locked), _history("taken_out")),
                                   _history("paid")) != _history("came_in"))
                        | (money_add(_A.locked, _history("paid")) != _history("unstaked")))
                 .order_by(_A.id))
_HISTORY_OFF_BOOKS = (select(_H.uid, _H.provider_no, _H.ccy, _H.came_in, _H.taken_out, _H.unstaked, _H.paid)
                      .where(~select(_A.id).where(_OF_ACCOUNT).exists(),
                             money_add(_H.taken_out, _H.paid) != _H.came_in)
                      .order_by(_H.uid, _H.provider_no, _H.ccy))
_INTEREST = (select(_E.provider_no, _E.ccy, _E.accrual_day, func.count().label("n"),
                    money_sum(_E.amount).label("amount"))
             .where(_E.type == "Interest").group_by(_E.provider_no, _E.ccy, _E.accrual_day))

_RUNS = select(provider_accrual_runs)
_RUNNING = select(job_run_plans.c.period).where(job_run_plans.c.job == INTEREST_JOB,
                                                 job_run_plans.c.finished_at.is_(None))
_PAYMENTS = (select(_E.redeem_id, money_sum(_E.amount).label("amount")).where(_E.type == "RedeemPayment")
             .group_by(_E.redeem_id).subquery("payments"))
_UNSTAKE_COUNT = select(func.count()).select_from(provider_events).where(_E.type == "Redeem")
_PAYMENTS_SAY = case((_PAYMENTS.c.redeem_id.is_not(None) | (_E.status == "pending"),
                      func.coalesce(_PAYMENTS.c.amount, _NOTHING)), else_=_E.paid)
#: An unstake's ``paid`` against its payments (once it has any, or while it is pending), within its
#: amount, and ``done`` exactly when all of it is paid.
_UNSTAKES_OFF = (select(_E.id, _E.amount, _E.paid, _E.status, _PAYMENTS.c.amount.label("payments"))
                 .select_from(provider_events.outerjoin(_PAYMENTS, _PAYMENTS.c.redeem_id == _E.id))
                 .where(_E.type == "Redeem",
                        (_E.paid != _PAYMENTS_SAY) | money_below(_E.amount, _E.paid)
                        | ((func.coalesce(_E.status, "") == "done") != (_E.paid == _E.amount)))
                 .order_by(_E.id))


def _balances_match_history(conn: Connection) -> CheckResult:
    result = CheckResult("staking balances equal their history", conn.execute(_STAKING_COUNT).scalar_one())
    for r in conn.execute(_ACCOUNTS_OFF):
        total, locked = r.came_in - r.taken_out - r.paid, r.unstaked - r.paid
        if r.available + r.locked != total or r.locked != locked:
            result.violations.append(
                f"u:{r.uid} provider {r.acct_type - STAKING_BASE} {r.ccy}: balance {to_plain(r.available)}"
                f"+{to_plain(r.locked)} locked, history {to_plain(total)} with {to_plain(locked)} being paid out")
    for r in conn.execute(_HISTORY_OFF_BOOKS):
        total = r.came_in - r.taken_out - r.paid
        if total != 0:
            result.violations.append(f"u:{r.uid} provider {r.provider_no} {r.ccy}: history {to_plain(total)}, "
                                     f"no account")
    return result


def _runs_match_events(conn: Connection) -> CheckResult:
    paid = {(r.provider_no, r.ccy, r.accrual_day): (int(r.n), Decimal(r.amount)) for r in conn.execute(_INTEREST)}
    result = CheckResult("interest runs equal their events", 0)
    for r in conn.execute(_RUNS):
        result.checked += 1
        got = paid.pop((r.provider_no, r.ccy, r.day), (0, ZERO))
        if got != (r.holders, r.total):
            result.violations.append(f"run {r.provider_no} {r.ccy} {r.day}: {r.holders} stakers {r.total}, "
                                     f"events {got[0]} {got[1]}")
    running = set(conn.execute(_RUNNING).scalars())
    for key, got in paid.items():
        if key[2] not in running:  # a run in progress has paid some chunks, not yet recorded
            result.violations.append(f"interest events without a run: {key} {got}")
    return result


def _unstakes_match_payments(conn: Connection) -> CheckResult:
    result = CheckResult("unstakes paid as their payments say", conn.execute(_UNSTAKE_COUNT).scalar_one())
    for r in conn.execute(_UNSTAKES_OFF):
        payments = r.payments if r.payments is not None else ZERO
        expected = payments if r.payments is not None or r.status == "pending" else r.paid
        if r.paid != expected or r.paid > r.amount or (r.status == "done") != (r.paid == r.amount):
            result.violations.append(f"unstake {r.id}: amount {to_plain(r.amount)}, paid {to_plain(r.paid)} "
                                     f"({r.status}), payments {to_plain(payments)}")
    return result


def provider_checks(conn: Connection) -> list[CheckResult]:
    return [_balances_match_history(conn), _runs_match_events(conn), _unstakes_match_payments(conn)]


CHECKS = (provider_checks,)
