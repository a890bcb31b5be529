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


def _balances_match_history(conn: Connection) -> CheckResult:
    e, a = provider_events.c, ledger_accounts.c
    total: dict[tuple[str, int, str], Decimal] = defaultdict(Decimal)
    locked: dict[tuple[str, int, str], Decimal] = defaultdict(Decimal)
    for r in conn.execute(select(e.uid, e.provider_no, e.ccy, e.type, money_sum(conn, e.amount).label("amount"),
                                 money_sum(conn, e.paid).label("paid"))
                          .group_by(e.uid, e.provider_no, e.ccy, e.type)):
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
    for r in conn.execute(select(a.uid, a.acct_type, a.ccy, a.available, a.locked).where(a.acct_type > STAKING_BASE)):
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
    e = provider_events.c
    paid = {(r.provider_no, r.ccy, r.accrual_day): (int(r.n), Decimal(r.amount)) for r in conn.execute(
        select(e.provider_no, e.ccy, e.accrual_day, func.count().label("n"), money_sum(conn, e.amount).label("amount"))
        .where(e.type == "Interest").group_by(e.provider_no, e.ccy, e.accrual_day))}
    result = CheckResult("interest runs equal their events", 0)
    for r in conn.execute(select(provider_accrual_runs)):
        result.checked += 1
        got = paid.pop((r.provider_no, r.ccy, r.day), (0, ZERO))
        if got != (r.holders, r.total):
            result.violations.append(f"run {r.provider_no} {r.ccy} {r.day}: {r.holders} stakers {r.total}, "
                                     f"events {got[0]} {got[1]}")
    running = set(conn.execute(select(job_run_plans.c.period).where(
        job_run_plans.c.job == INTEREST_JOB, job_run_plans.c.finished_at.is_(None))).scalars())
    for key, got in paid.items():
        if key[2] not in running:  # a run in progress has paid some chunks, not yet recorded
            result.violations.append(f"interest events without a run: {key} {got}")
    return result


def _unstakes_match_payments(conn: Connection) -> CheckResult:
    e = provider_events.c
    payments = {r.redeem_id: Decimal(r.amount) for r in conn.execute(
        select(e.redeem_id, money_sum(conn, e.amount).label("amount")).where(e.type == "RedeemPayment")
        .group_by(e.redeem_id))}
    result = CheckResult("unstakes paid as their payments say", 0)
    for r in conn.execute(select(e.id, e.amount, e.paid, e.status, e.entry_id).where(e.type == "Redeem")):
        result.checked += 1
        expected = payments.get(r.id, ZERO) if r.id in payments or r.status == "pending" else r.paid
        if r.paid != expected or r.paid > r.amount or (r.status == "done") != (r.paid == r.amount):
            result.violations.append(f"unstake {r.id}: amount {r.amount}, paid {r.paid} ({r.status}), "
                                     f"payments {payments.get(r.id, ZERO)}")
    return result


def provider_checks(conn: Connection) -> list[CheckResult]:
    return [_balances_match_history(conn), _runs_match_events(conn), _unstakes_match_payments(conn)]


CHECKS = (provider_checks,)
