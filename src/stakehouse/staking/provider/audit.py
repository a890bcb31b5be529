"""Audit checks of provider staking, passed to :func:`stakehouse.ledger.audit.run_audit`:

* every staking balance equals what its history says: deposits + interest - what was paid back
  (``available + locked``), and its locked part equals the unstakes not yet paid;
* every interest run's total and staker count equal its ``Interest`` events;
* every unstake's ``paid`` equals its ``RedeemPayment`` events (instant ones: their amount).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import Connection, func, select

from stakehouse.db.tables import job_run_plans, ledger_accounts, provider_accrual_runs, provider_events
from stakehouse.ledger.audit import CheckResult, money_sum
from stakehouse.ledger.rules import STAKING_BASE
from stakehouse.money import ZERO
from stakehouse.staking.provider.service import INTEREST_JOB

_IN = ("Deposit", "Interest", "AdminCreditAdjustment")
_OUT = ("AdminDebitAdjustment",)


# The checks' statements, built once ("Prebuilt statements" in docs/architecture.md).
_E, _A = provider_events.c, ledger_accounts.c
_HISTORY = (select(_E.uid, _E.provider_no, _E.ccy, _E.type, money_sum(_E.amount).label("amount"),
                   money_sum(_E.paid).label("paid"))
            .group_by(_E.uid, _E.provider_no, _E.ccy, _E.type))
_STAKING_ACCOUNTS = (select(_A.uid, _A.acct_type, _A.ccy, _A.available, _A.locked)
                     .where(_A.acct_type > STAKING_BASE))
_INTEREST = (select(_E.provider_no, _E.ccy, _E.accrual_day, func.count().label("n"),
                    money_sum(_E.amount).label("amount"))
             .where(_E.type == "Interest").group_by(_E.provider_no, _E.ccy, _E.accrual_day))

_RUNS = select(provider_accrual_runs)
_RUNNING = select(job_run_plans.c.period).where(job_run_plans.c.job == INTEREST_JOB,
                                                 job_run_plans.c.finished_at.is_(None))
_PAYMENTS = (select(_E.redeem_id, money_sum(_E.amount).label("amount")).where(_E.type == "RedeemPayment")
             .group_by(_E.redeem_id))
_UNSTAKES = select(_E.id, _E.amount, _E.paid, _E.status, _E.entry_id).where(_E.type == "Redeem")


def _balances_match_history(conn: Connection) -> CheckResult:
    total: dict[tuple[str, int, str], Decimal] = defaultdict(Decimal)
    locked: dict[tuple[str, int, str], Decimal] = defaultdict(Decimal)
    for r in conn.execute(_HISTORY):
        key = (r.uid, r.provider_no, r.ccy)
        amount, paid = Decimal(r.amount), Decimal(r.paid) if r.paid is not None else ZERO
        if r.type in _IN:
            total[key] += amount
        elif r.type in _OUT:
            total[key] -= amount
        elif r.type in ("Redeem", "AdminRedeem"):
            total[key] -= paid
            locked[key] += amount - paid
    result = CheckResult("staking balances equal their history", 0)
    seen = set()
    for r in conn.execute(_STAKING_ACCOUNTS):
        key = (r.uid, r.acct_type - STAKING_BASE, r.ccy)
        seen.add(key)
        result.checked += 1
        if r.available + r.locked != total[key] or r.locked != locked[key]:
            result.violations.append(f"u:{r.uid} provider {key[1]} {r.ccy}: balance {r.available}+{r.locked} locked, "
                                     f"history {total[key]} with {locked[key]} being paid out")
    for key in set(total) - seen:
        if total[key] != 0:
            result.violations.append(f"u:{key[0]} provider {key[1]} {key[2]}: history {total[key]}, no account")
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
    payments = {r.redeem_id: Decimal(r.amount) for r in conn.execute(_PAYMENTS)}
    result = CheckResult("unstakes paid as their payments say", 0)
    for r in conn.execute(_UNSTAKES):
        result.checked += 1
        expected = payments.get(r.id, ZERO) if r.id in payments or r.status == "pending" else r.paid
        if r.paid != expected or r.paid > r.amount or (r.status == "done") != (r.paid == r.amount):
            result.violations.append(f"unstake {r.id}: amount {r.amount}, paid {r.paid} ({r.status}), "
                                     f"payments {payments.get(r.id, ZERO)}")
    return result


def provider_checks(conn: Connection) -> list[CheckResult]:
    return [_balances_match_history(conn), _runs_match_events(conn), _unstakes_match_payments(conn)]


CHECKS = (provider_checks,)
