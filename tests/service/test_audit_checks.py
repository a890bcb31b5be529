"""The audit's checks find each kind of broken books, on both databases.

The checks compare in SQL and return only what is off (``ledger/audit.py``, the products'
``audit.py``); these tests break the books behind the services' back, one way each, and read the
report: the broken check names what is off, every other check stays clean, and ``checked`` still
counts everything looked at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from stakehouse.config import Settings
from stakehouse.db.tables import (
    contract_credits,
    dcd_orders,
    deposits,
    fd_rebate_records,
    fills,
    job_run_chunks,
    job_run_plans,
    job_runs,
    journal_entries,
    ledger_accounts,
    nd_rebate_records,
    orders,
    postings,
    provider_events,
    staking_rewards,
    withdrawals,
)
from stakehouse.dcd.service import Order as DcdOrder
from stakehouse.dcd.service import QuoteRequest
from stakehouse.funding.withdrawals import WithdrawalRequest
from stakehouse.jobs.chunks import totals_from_json, totals_json
from stakehouse.ledger.audit import AuditReport
from stakehouse.ledger.rules import STAKING_BASE
from stakehouse.money import to_plain
from stakehouse.security import new_server_key
from stakehouse.trading.service import Order, PlaceRequest
from stakehouse.wiring import Services
from tests.service.test_provider_staking import START, open_services
from tests.service.test_provider_staking import World as ProviderWorld
from tests.service.test_rebate_run import day_of_fills, next_hkt_midnight
from tests.service.test_reward_run import PRODUCT, next_day_start, staker
from tests.service.test_reward_run import _services as reward_services
from tests.service.test_trading_concurrency import trader

ENTRIES = "entries balance per currency"
CACHED = "cached balances equal the sum of postings"
NEGATIVE = "no negative user balance"
AT = dt.datetime(2031, 1, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def books(make_db: Callable[[str], str], backend: str) -> Iterator[tuple[Services, int, int]]:
    """Services with one user holding 12.5 USDT in funding: (services, the user's USDT account id, the
    platform account on the other side of the deposit)."""
    s = Services(Settings(database_url=make_db(backend), sandbox=True, server_key=new_server_key()))
    try:
        uid = s.accounts.create_user(kyc_level=2).uid
        s.chain.credit_deposit(uid, "USDT", Decimal("12.5"), idempotency_key="audit-dep")
        with s.db.read() as conn:
            user = conn.execute(select(ledger_accounts.c.id).where(ledger_accounts.c.uid == uid,
                                                                   ledger_accounts.c.ccy == "USDT")).scalar_one()
            other = conn.execute(select(postings.c.account_id).where(
                postings.c.entry_id == select(postings.c.entry_id).where(postings.c.account_id == user)
                .scalar_subquery(), postings.c.account_id != user)).scalar_one()
        yield s, user, other
    finally:
        s.close()


def failing(report: AuditReport) -> dict[str, list[str]]:
    return {c.name: c.violations for c in report.checks if not c.ok}


def checked_when_clean(s: Services) -> dict[str, int]:
    """The audit passes; how much each of its checks looked at."""
    report = s.audit()
    assert report.ok, failing(report)
    return {c.name: c.checked for c in report.checks}


def entry(conn: Connection, key: str, legs: list[tuple[int, str, str]]) -> int:
    """A journal entry written behind the ledger's back: its postings (account, bucket, amount), and the
    cached balances moved by them as the ledger would (so only what the test breaks is broken)."""
    entry_id = conn.execute(insert(journal_entries).values(
        type="tamper", ref=key, idempotency_key=key, created_at=AT, memo="").returning(journal_entries.c.id)
    ).scalar_one()
    for account, bucket, amount in legs:
        conn.execute(insert(postings).values(entry_id=entry_id, account_id=account, bucket=bucket, ccy="USDT",
                                             amount=Decimal(amount), created_at=AT))
        column = ledger_accounts.c[bucket]
        held = conn.execute(select(column).where(ledger_accounts.c.id == account)).scalar_one()
        conn.execute(update(ledger_accounts).where(ledger_accounts.c.id == account)
                     .values({column: held + Decimal(amount)}))
    return int(entry_id)


def test_clean_books_count_what_was_checked(books: tuple[Services, int, int]) -> None:
    s, _, _ = books
    checked = checked_when_clean(s)
    with s.db.read() as conn:
        accounts = conn.execute(select(func.count()).select_from(ledger_accounts)).scalar_one()
        guarded = conn.execute(select(func.count()).select_from(ledger_accounts)
                               .where(ledger_accounts.c.allow_negative.is_(False))).scalar_one()
        entries = conn.execute(select(func.count()).select_from(journal_entries)).scalar_one()
    assert checked[CACHED] == accounts and checked[NEGATIVE] == guarded and checked[ENTRIES] == entries
    assert 0 < guarded < accounts  # the platform's accounts may go negative, the user's may not


def test_an_unbalanced_entry(books: tuple[Services, int, int]) -> None:
    s, user, other = books
    with s.db.write() as conn:
        bad = entry(conn, "unbalanced", [(user, "available", "1.25"), (other, "available", "-1.2")])
    assert failing(s.audit()) == {ENTRIES: [f"entry {bad} is off by 0.05 USDT"]}


def test_an_entry_of_one_posting(books: tuple[Services, int, int]) -> None:
    s, user, _ = books
    with s.db.write() as conn:
        bad = entry(conn, "thin", [(user, "available", "0")])
    assert failing(s.audit()) == {ENTRIES: [f"entry {bad} has 1 postings"]}


@pytest.mark.parametrize(("bucket", "value", "summed"), [("available", "99", "12.5"), ("locked", "0.000001", "0")])
def test_a_cached_balance_off_its_postings(books: tuple[Services, int, int], bucket: str, value: str,
                                           summed: str) -> None:
    s, user, _ = books
    with s.db.write() as conn:
        conn.execute(update(ledger_accounts).where(ledger_accounts.c.id == user).values({bucket: Decimal(value)}))
        owner, kind = conn.execute(select(ledger_accounts.c.owner, ledger_accounts.c.acct_type)
                                   .where(ledger_accounts.c.id == user)).one()
    assert failing(s.audit()) == {CACHED: [f"{owner} type {kind} USDT {bucket}: cached {value}, postings {summed}"]}


def test_a_negative_user_balance(books: tuple[Services, int, int]) -> None:
    s, user, other = books
    overdraw = [(user, "available", "-13"), (other, "available", "13")]
    with pytest.raises(IntegrityError, match="ck_ledger_accounts_not_negative"), s.db.write() as conn:
        entry(conn, "refused", overdraw)  # the database refuses it first; the audit is the second line
    with s.db.write() as conn:  # balanced, cached as posted: only the sign is wrong
        if s.db.is_sqlite:
            conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
        else:
            conn.exec_driver_sql("ALTER TABLE ledger_accounts DROP CONSTRAINT ck_ledger_accounts_not_negative")
        entry(conn, "overdrawn", overdraw)
        if s.db.is_sqlite:
            conn.exec_driver_sql("PRAGMA ignore_check_constraints = OFF")
        owner = conn.execute(select(ledger_accounts.c.owner).where(ledger_accounts.c.id == user)).scalar_one()
    assert failing(s.audit()) == {NEGATIVE: [f"{owner} type 6 USDT: available -0.5, locked 0"]}


# -- the spot market (trading/audit.py) --------------------------------------------------------------

FILL_FEES = "trading: each fill's fee = base fee + markup"
LOCKS = "trading: locked trading balances = open orders' holds"
CREDITS = "trading: credits used within their amounts"


@pytest.fixture
def market(make_db: Callable[[str], str], backend: str) -> Iterator[tuple[Services, str, Order, Order]]:
    """A trader with one filled market buy and one resting limit buy (holding 100 USDT):
    (services, uid, the filled order, the resting order)."""
    s = open_services(make_db(backend), START)
    try:
        s.prices.set_price("BTC-USDT", Decimal(50000))
        uid = trader(s, "1000")
        filled = s.trading.place(uid, PlaceRequest("BTC-USDT", "cash", "buy", "market", Decimal("100"), None))
        resting = s.trading.place(uid, PlaceRequest("BTC-USDT", "cash", "buy", "limit", Decimal("0.0025"),
                                                    Decimal("40000")))
        assert resting.state == "live" and filled.state == "filled"
        checked = checked_when_clean(s)
        assert checked[FILL_FEES] == 1 and checked[LOCKS] >= 1
        yield s, uid, filled, resting
    finally:
        s.close()


def test_a_fill_whose_fee_is_not_its_parts(market: tuple[Services, str, Order, Order]) -> None:
    s, _, filled, _ = market
    with s.db.write() as conn:
        trade_id, fee = conn.execute(select(fills.c.trade_id, fills.c.fee).where(fills.c.ord_id == filled.ord_id)).one()
        conn.execute(update(fills).where(fills.c.trade_id == trade_id).values(fee=fee + Decimal("1E-18")))
    assert list(failing(s.audit())) == [FILL_FEES]


def test_a_fill_paid_by_credit_beyond_its_fee(market: tuple[Services, str, Order, Order]) -> None:
    s, _, filled, _ = market
    with s.db.write() as conn:  # the credit-paid part above the fee: the fee account's sum is off too
        trade_id, fee = conn.execute(select(fills.c.trade_id, fills.c.fee).where(fills.c.ord_id == filled.ord_id)).one()
        conn.execute(update(fills).where(fills.c.trade_id == trade_id).values(credit_fee=fee * 10))
    found = failing(s.audit())
    assert found[FILL_FEES] == [f"fill {trade_id}: fee {to_plain(fee)} base {to_plain(fee)} markup 0 "
                                f"credit {to_plain(fee * 10)}"]


def test_a_lock_that_is_not_what_the_orders_hold(market: tuple[Services, str, Order, Order]) -> None:
    s, uid, _, resting = market
    with s.db.write() as conn:
        conn.execute(update(orders).where(orders.c.ord_id == resting.ord_id).values(locked=Decimal("99.5")))
    assert failing(s.audit()) == {LOCKS: [f"u:{uid} USDT: orders hold 99.5, locked 100"]}


def test_a_done_order_that_still_holds(market: tuple[Services, str, Order, Order]) -> None:
    s, _, _, resting = market
    with s.db.write() as conn:
        conn.execute(update(orders).where(orders.c.ord_id == resting.ord_id).values(state="canceled"))
    assert failing(s.audit()) == {LOCKS: [f"order {resting.ord_id} is canceled but holds 100 USDT"]}


def test_orders_holding_on_no_trading_account(market: tuple[Services, str, Order, Order]) -> None:
    s, uid, _, resting = market
    with s.db.write() as conn:  # the hold moved to a currency the user has no trading account in
        conn.execute(update(orders).where(orders.c.ord_id == resting.ord_id).values(lock_ccy="SOL"))
    assert failing(s.audit()) == {LOCKS: [f"u:{uid} USDT: orders hold 0, locked 100",
                                           f"u:{uid} SOL: orders hold 100, locked 0"]}


@pytest.mark.parametrize("used", ["-0.01", "25.000000000000000001"])
def test_a_credit_used_outside_its_amount(market: tuple[Services, str, Order, Order], used: str) -> None:
    s, _, _, _ = market
    master = s.accounts.create_user(kyc_level=2).uid
    s.broker.set_broker(master)
    sub = s.accounts.create_sub_account(parent_uid=master, sub_name="auditcredit").uid
    credit = s.credits.grant(sub, Decimal(25), activate_exp_at=START + dt.timedelta(days=1),
                             valid_period_ms=86_400_000)
    assert s.audit().ok
    with s.db.write() as conn:
        conn.execute(update(contract_credits).where(contract_credits.c.credit_id == credit.credit_id)
                     .values(used=Decimal(used)))
    assert failing(s.audit()) == {CREDITS: [f"credit {credit.credit_id}: used {used} of 25"]}


# -- liquid staking (staking/liquid/audit.py) ---------------------------------------------------------

REWARDS = "reward runs: net + fee = gross"


@pytest.mark.parametrize(("column", "value"), [("net", "0.00034247"), ("fee", "-0.00000001")])
def test_a_reward_row_whose_parts_do_not_add_up(make_db: Callable[[str], str], backend: str, column: str,
                                                value: str) -> None:
    s = next(reward_services(make_db(backend)))
    try:
        day, start = next_day_start(s)
        s.advance_clock(to=start + dt.timedelta(hours=1))
        s.staking.publish_rate(PRODUCT, day, Decimal("0.05"))
        uid = staker(s)
        s.staking.purchase(uid, PRODUCT, Decimal("2.5"))
        s.advance_clock(to=s.calendar.period_of_day(day + dt.timedelta(days=1)).end + dt.timedelta(minutes=1))
        row = {"gross": Decimal("0.00034246"), "net": Decimal("0.00034246"), "fee": Decimal(0)}
        key = (staking_rewards.c.uid == uid) & (staking_rewards.c.day == (day + dt.timedelta(days=1)).isoformat())
        with s.db.read() as conn:  # 2.5 * 0.05 / 365, no fee: the day after the purchase earns
            assert dict(conn.execute(select(staking_rewards.c.gross, staking_rewards.c.net, staking_rewards.c.fee)
                                     .where(key)).one()._mapping) == row
        assert checked_when_clean(s)[REWARDS] >= 2
        with s.db.write() as conn:
            conn.execute(update(staking_rewards).where(key).values({column: Decimal(value)}))
        row[column] = Decimal(value)
        found = failing(s.audit())
        assert found[REWARDS][-1] == (f"{PRODUCT} {(day + dt.timedelta(days=1)).isoformat()} {uid}: gross 0.00034246 "
                                      f"net {to_plain(row['net'])} fee {to_plain(row['fee'])}")
    finally:
        s.close()


# -- provider staking (staking/provider/audit.py) -----------------------------------------------------

HISTORY = "staking balances equal their history"
UNSTAKES = "unstakes paid as their payments say"


@pytest.fixture
def stakers(make_db: Callable[[str], str], backend: str) -> Iterator[tuple[Services, str, str, int, int]]:
    """A staker with 20 SOL staked and 7 of it being unstaked (queued, nothing paid yet), and a user
    with no staking account: (services, staker, other user, provider number, the unstake's event id)."""
    s = open_services(make_db(backend), START)
    try:
        w = ProviderWorld(s)
        sol = w.product(None, "SOL", precision=8, queued=True, cap=Decimal(5), unbonding=1)
        staker_uid, other = w.user(SOL="30"), w.user(SOL="1")
        w.stake(staker_uid, sol, Decimal(20))
        w.unstake(staker_uid, sol, Decimal(7))
        with s.db.read() as conn:
            kind = conn.execute(select(ledger_accounts.c.acct_type).where(
                ledger_accounts.c.uid == staker_uid, ledger_accounts.c.acct_type > STAKING_BASE)).scalar_one()
            redeem = conn.execute(select(provider_events.c.id).where(
                provider_events.c.uid == staker_uid, provider_events.c.type == "Redeem")).scalar_one()
        checked = checked_when_clean(s)
        assert checked[HISTORY] == 1 and checked[UNSTAKES] == 1
        yield s, staker_uid, other, kind - STAKING_BASE, redeem
    finally:
        s.close()


def test_a_staking_balance_off_its_history(stakers: tuple[Services, str, str, int, int]) -> None:
    s, uid, _, provider, _ = stakers
    with s.db.write() as conn:
        conn.execute(update(provider_events).where(provider_events.c.uid == uid, provider_events.c.type == "Deposit")
                     .values(amount=Decimal("20.5")))
    assert failing(s.audit()) == {
        HISTORY: [f"u:{uid} provider {provider} SOL: balance 13+7 locked, history 20.5 with 7 being paid out"]}


def test_staking_history_with_no_account(stakers: tuple[Services, str, str, int, int]) -> None:
    s, uid, other, provider, _ = stakers
    with s.db.write() as conn:  # the deposit told of another user, who has no staking account
        conn.execute(update(provider_events).where(provider_events.c.uid == uid, provider_events.c.type == "Deposit")
                     .values(uid=other))
    assert failing(s.audit()) == {HISTORY: [
        f"u:{uid} provider {provider} SOL: balance 13+7 locked, history 0 with 7 being paid out",
        f"u:{other} provider {provider} SOL: history 20, no account"]}


def test_an_unstake_paid_without_payments(stakers: tuple[Services, str, str, int, int]) -> None:
    s, uid, _, provider, redeem = stakers
    with s.db.write() as conn:
        conn.execute(update(provider_events).where(provider_events.c.id == redeem).values(paid=Decimal("1.25")))
    assert failing(s.audit()) == {
        HISTORY: [f"u:{uid} provider {provider} SOL: balance 13+7 locked, history 18.75 with 5.75 being paid out"],
        UNSTAKES: [f"unstake {redeem}: amount 7, paid 1.25 (pending), payments 0"]}


# -- chunked runs (jobs/audit.py) ---------------------------------------------------------------------

RUNS = "chunked runs: chunks done, totals summed"
JOB = "provider_interest"


@pytest.fixture
def runs(make_db: Callable[[str], str], backend: str) -> Iterator[tuple[Services, str]]:
    """Provider interest paid for a day in two chunks (one staker each): (services, the run's period)."""
    s = open_services(make_db(backend), START, job_chunk_size=1)
    try:
        w = ProviderWorld(s)
        eth = w.product()
        w.publish(eth, START.date(), Decimal(540))
        for _ in range(2):
            w.stake(w.user(ETH="10"), eth, Decimal(5))
        w.at(START + 2 * dt.timedelta(days=1))
        period = next(r.period for r in s.runner.runs(job=JOB, limit=100) if r.planned == 2 and r.finished)
        checked = checked_when_clean(s)
        with s.db.read() as conn:
            plans = conn.execute(select(func.count()).select_from(job_run_plans)).scalar_one()
        assert checked[RUNS] == plans
        yield s, period
    finally:
        s.close()


def plan_of(period: str) -> Any:
    return (job_run_plans.c.job == JOB) & (job_run_plans.c.period == period)


def chunk_of(period: str, chunk: int) -> Any:
    c = job_run_chunks.c
    return (c.job == JOB) & (c.period == period) & (c.chunk == chunk)


def test_a_finished_run_whose_totals_are_not_its_chunks(runs: tuple[Services, str]) -> None:
    s, period = runs
    with s.db.write() as conn:
        totals = totals_from_json(conn.execute(select(job_run_chunks.c.totals).where(chunk_of(period, 0)))
                                  .scalar_one())
        more = {k: v + 1 for k, v in totals.items()}
        conn.execute(update(job_run_chunks).where(chunk_of(period, 0)).values(totals=totals_json(more)))
    [violation] = failing(s.audit())[RUNS]
    assert violation.startswith(f"{JOB} {period}: totals ") and "but its chunks sum to" in violation


def test_a_run_of_one_chunk_is_summed_unless_its_text_is_its_chunks(runs: tuple[Services, str]) -> None:
    s, period = runs
    with s.db.write() as conn:  # made a run of one chunk: its totals those of that chunk, as the runner writes
        conn.execute(delete(job_run_chunks).where(chunk_of(period, 1)))
        one = conn.execute(select(job_run_chunks.c.totals).where(chunk_of(period, 0))).scalar_one()
        conn.execute(update(job_run_plans).where(plan_of(period)).values(planned=1, totals=one))
    assert s.audit().ok
    with s.db.write() as conn:  # the same sums in other text (an extra zero): still equal
        conn.execute(update(job_run_plans).where(plan_of(period))
                     .values(totals=totals_json({**totals_from_json(one), "zzz": Decimal(0)})))
    assert s.audit().ok
    with s.db.write() as conn:
        conn.execute(update(job_run_plans).where(plan_of(period))
                     .values(totals=totals_json({**totals_from_json(one), "zzz": Decimal(1)})))
    [violation] = failing(s.audit())[RUNS]
    assert violation.startswith(f"{JOB} {period}: totals ") and "'zzz': Decimal('1')" in violation


def test_a_finished_run_with_a_chunk_not_done(runs: tuple[Services, str]) -> None:
    s, period = runs
    with s.db.write() as conn:
        conn.execute(update(job_run_chunks).where(chunk_of(period, 1)).values(done_at=None))
    assert failing(s.audit()) == {RUNS: [f"{JOB} {period}: finished with 2 of 2 chunks, 1 not done"]}


def test_more_chunks_than_planned(runs: tuple[Services, str]) -> None:
    s, period = runs
    with s.db.write() as conn:
        conn.execute(update(job_run_plans).where(plan_of(period)).values(planned=1))
    assert failing(s.audit()) == {RUNS: [f"{JOB} {period}: 2 chunks, 1 planned",
                                         f"{JOB} {period}: finished with 2 of 1 chunks, 0 not done"]}


def test_a_finished_run_whose_period_is_not_claimed(runs: tuple[Services, str]) -> None:
    s, period = runs
    with s.db.write() as conn:
        conn.execute(delete(job_runs).where(job_runs.c.job == JOB, job_runs.c.period == period))
    assert failing(s.audit()) == {RUNS: [f"{JOB} {period}: finished but its period is not marked done"]}


def test_a_run_in_progress_whose_period_is_claimed(runs: tuple[Services, str]) -> None:
    s, period = runs
    with s.db.write() as conn:
        conn.execute(update(job_run_plans).where(plan_of(period)).values(finished_at=None))
    assert failing(s.audit()) == {
        f"{RUNS} (1 in progress)": [f"{JOB} {period}: in progress but its period is marked done"]}


# -- dual-currency deposits (dcd/audit.py) ------------------------------------------------------------

BOOK = "dcd: the book = subscriptions - payouts - markups, per currency"
SETTLED = "dcd: each settled order paid what its settlement price gives"


@pytest.fixture
def dcd(make_db: Callable[[str], str], backend: str) -> Iterator[tuple[Services, DcdOrder]]:
    """A put on ETH/USDT bought for 100 USDT by a broker's sub-account: (services, the order)."""
    s = open_services(make_db(backend), START)
    try:
        s.advance_clock(by=dt.timedelta(days=1))  # the day's products are listed at 08:00
        master = s.accounts.create_user(kyc_level=2).uid
        s.broker.set_broker(master)
        sub = s.accounts.create_sub_account(parent_uid=master, sub_name="auditdcd").uid
        s.chain.credit_deposit(sub, "USDT", Decimal(1000))
        product = s.dcd.products("ETH", "USDT", "P")[0].product
        order = s.dcd.order(sub, s.dcd.quote(sub, QuoteRequest(product.product_id, Decimal(100), "USDT", tag="")
                                             ).quote_id)
        assert checked_when_clean(s)[BOOK] == 1
        yield s, order
    finally:
        s.close()


def test_a_dcd_book_that_does_not_hold_its_orders(dcd: tuple[Services, DcdOrder]) -> None:
    s, order = dcd
    with s.db.write() as conn:
        conn.execute(update(dcd_orders).where(dcd_orders.c.ord_id == order.ord_id).values(notional=Decimal("100.5")))
    assert failing(s.audit()) == {BOOK: ["USDT: book 100, orders say 100.5"]}


def test_a_settled_dcd_order_that_paid_other_than_the_rule(dcd: tuple[Services, DcdOrder]) -> None:
    s, order = dcd
    s.advance_clock(to=order.product.sett_time + dt.timedelta(minutes=1))
    with s.db.read() as conn:
        state, amount, ccy = conn.execute(select(dcd_orders.c.state, dcd_orders.c.sett_amt, dcd_orders.c.sett_ccy)
                                          .where(dcd_orders.c.ord_id == order.ord_id)).one()
    assert state == "settled" and checked_when_clean(s)[SETTLED] == 1
    with s.db.write() as conn:  # one unit more paid out than the book paid
        conn.execute(update(dcd_orders).where(dcd_orders.c.ord_id == order.ord_id)
                     .values(sett_amt=amount + Decimal("0.000001")))
    found = failing(s.audit())
    assert found[SETTLED] == [f"order {order.ord_id}: paid {to_plain(amount + Decimal('0.000001'))} {ccy}, "
                              f"the rule gives {to_plain(amount)} {ccy}"]
    assert len(found[BOOK]) == 1 and found[BOOK][0].startswith(f"{ccy}: book ")


# -- funding (funding/audit.py; an on-chain withdrawal out of step: tests/service/test_withdrawal_events.py) --

WITHDRAWALS = "withdrawals: entries match their states"


@pytest.mark.parametrize("tamper", ["amount", "twice", "pending"])
def test_an_internal_withdrawal_out_of_step_with_its_deposit(books: tuple[Services, int, int], tamper: str) -> None:
    s, _, _ = books
    sender = s.accounts.create_user(kyc_level=2).uid
    receiver = s.accounts.create_user(kyc_level=2).uid
    s.chain.credit_deposit(sender, "USDT", Decimal(50), idempotency_key="audit-internal")
    w = s.withdrawals.withdraw(sender, WithdrawalRequest(ccy="USDT", amt=Decimal(20), dest=3, to_addr=receiver))
    assert checked_when_clean(s)[WITHDRAWALS] == 1
    with s.db.write() as conn:
        [credit] = conn.execute(select(deposits).where(deposits.c.from_wd_id == w.wd_id)).mappings().all()
        if tamper == "amount":  # the receiver's deposit record says another amount than was sent
            conn.execute(update(deposits).where(deposits.c.dep_id == credit["dep_id"]).values(amt=Decimal("20.5")))
        elif tamper == "twice":  # credited twice
            conn.execute(insert(deposits).values({**credit, "dep_id": credit["dep_id"] + 1000,
                                                  "tx_id": credit["tx_id"] + "x"}))
        else:  # not a success
            conn.execute(update(withdrawals).where(withdrawals.c.wd_id == int(w.wd_id)).values(state=0))
    found = failing(s.audit())
    assert list(found) == [WITHDRAWALS] and len(found[WITHDRAWALS]) == 1, found
    deposits_now = 2 if tamper == "twice" else 1
    state = 0 if tamper == "pending" else 2
    assert found[WITHDRAWALS][0].startswith(f"internal withdrawal {w.wd_id} in state {state}: entry ")
    assert found[WITHDRAWALS][0].endswith(f", {deposits_now} deposits")


# -- broker rebates (rebates/audit.py) ----------------------------------------------------------------

ND_PAID = "rebates: each ND (broker, day) paid = the sum of its records"
FD_PAID = "rebates: each FD (broker, type, day) paid = the sum of its records (broker's and users' shares)"


@pytest.fixture
def rebated(make_db: Callable[[str], str], backend: str) -> Iterator[tuple[Services, str, str, str]]:
    """One day's rebates paid: an ND broker's three sub-accounts' fills (0.72 USDT) and an FD broker's
    user's fill. (services, ND broker, FD broker, the day as the records name it)."""
    s = open_services(make_db(backend), START)
    try:
        nd_broker, _ = day_of_fills(s)
        fd_broker = s.accounts.create_user(kyc_level=2).uid
        code = s.fd_brokers.set_up(fd_broker, code=None, types=("api",), ratio=Decimal("0.5"),
                                   client_ratio=Decimal(0)).code
        user = trader(s, "1000")
        s.trading.place(user, PlaceRequest("BTC-USDT", "cash", "buy", "market", Decimal("0.01"), None, "base_ccy",
                                           tag=code, auth="api"))
        s.advance_clock(to=next_hkt_midnight(START) + dt.timedelta(minutes=1))
        with s.db.read() as conn:
            day = conn.execute(select(nd_rebate_records.c.day).distinct()).scalar_one()
            fd_total = conn.execute(select(fd_rebate_records.c.broker_rebate)).scalar_one()
        assert fd_total > 0
        checked = checked_when_clean(s)
        assert checked[ND_PAID] == 1 and checked[FD_PAID] == 1
        yield s, nd_broker, fd_broker, day
    finally:
        s.close()


def test_an_nd_day_paid_other_than_its_records(rebated: tuple[Services, str, str, str]) -> None:
    s, broker, _, day = rebated
    with s.db.write() as conn:
        rid, income, entry = conn.execute(select(nd_rebate_records.c.id, nd_rebate_records.c.income,
                                                 nd_rebate_records.c.entry_id).limit(1)).one()
        conn.execute(update(nd_rebate_records).where(nd_rebate_records.c.id == rid)
                     .values(income=income + Decimal("0.1")))
    assert failing(s.audit()) == {ND_PAID: [f"{broker} {day}: records 0.82, paid 0.72 (entry {entry})"]}


def test_an_nd_day_whose_records_point_at_two_payouts(rebated: tuple[Services, str, str, str]) -> None:
    s, broker, _, day = rebated
    with s.db.write() as conn:
        rid = conn.execute(select(nd_rebate_records.c.id).limit(1)).scalar_one()
        conn.execute(update(nd_rebate_records).where(nd_rebate_records.c.id == rid).values(entry_id=None))
    assert failing(s.audit()) == {ND_PAID: [f"{broker} {day}: records 0.72, paid None (entry several)"]}


def test_an_fd_day_paid_other_than_its_records(rebated: tuple[Services, str, str, str]) -> None:
    s, _, broker, day = rebated
    with s.db.write() as conn:
        rebate, entry = conn.execute(select(fd_rebate_records.c.broker_rebate, fd_rebate_records.c.entry_id)).one()
        conn.execute(update(fd_rebate_records).values(user_rebate=Decimal("0.00000001")))
    assert failing(s.audit()) == {FD_PAID: [
        f"{broker} api {day}: records {to_plain(rebate + Decimal('0.00000001'))}, paid {to_plain(rebate)} "
        f"(entry {entry})"]}
