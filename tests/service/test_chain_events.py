"""The chain simulator's deposits as an event source of the job runner: interleaved with the
periodic jobs in due-time order, exactly once however many runners race, stamped at due time."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from stakehouse.config import Settings
from stakehouse.db.tables import brokers, deposits, journal_entries
from stakehouse.funding.deposits import SendDeposit
from stakehouse.jobs.runner import JobRunner
from stakehouse.ledger.rules import FUNDING, TRADING
from stakehouse.security import new_server_key
from stakehouse.wiring import Services


@pytest.fixture
def sandbox(backend: str, make_db: Callable[[str], str]) -> Iterator[Services]:
    db = make_db(backend)
    services = Services(Settings(database_url=db, sandbox=True, server_key=new_server_key(),
                                 key_expiry_enabled=False))
    assert services.sandbox_clock is not None
    services.sandbox_clock.freeze()
    yield services
    services.close()


def broker_with_sub(services: Services, sub_name: str = "chainSub01") -> tuple[str, str]:
    """A master marked as ND broker (the row ``PUT /admin/brokers/{uid}`` writes) and one sub-account."""
    master = services.accounts.create_user(kyc_level=2)
    now = services.clock.now()
    with services.db.write() as conn:
        conn.execute(brokers.insert().values(uid=master.uid, level=1, max_sub_accts=None, enabled=True,
                                             created_at=now, updated_at=now))
    sub = services.accounts.create_sub_account(parent_uid=master.uid, sub_name=sub_name)
    return master.uid, sub.uid


def credit_entries(services: Services, dep_id: str) -> int:
    with services.db.read() as conn:
        return len(conn.execute(select(journal_entries.c.id).where(
            journal_entries.c.idempotency_key == f"deposit:credit:{dep_id}")).all())


def balance(services: Services, uid: str, acct_type: int, ccy: str) -> Decimal:
    rows = services.assets.balances(uid, acct_type, [ccy])
    return rows[0].available if rows else Decimal(0)


def test_deposit_confirms_credits_and_succeeds_once_stamped_at_its_due_times(sandbox: Services) -> None:
    svc = sandbox
    master, sub = broker_with_sub(svc)
    svc.chain.configure_chain("ETH-ERC20", {"confirmations": 3, "unlock_confirmations": 5, "block_seconds": 10})
    addr = svc.chain.create_address(master, "chainSub01", "ETH")
    sent_at = svc.clock.now()
    dep = svc.chain.send_deposit(SendDeposit(addr=addr.addr, ccy="ETH", amt=Decimal("1.25")))
    assert (dep.state, dep.confirmations, dep.next_at) == (0, 0, sent_at + dt.timedelta(seconds=30))
    assert dep.tx_id.startswith("0x") and len(dep.tx_id) == 66

    svc.advance_clock(by=dt.timedelta(seconds=29))
    d = svc.chain.deposit(dep.dep_id)
    assert (d.state, d.confirmations) == (0, 2) and balance(svc, sub, FUNDING, "ETH") == 0
    ran = svc.advance_clock(by=dt.timedelta(seconds=1))
    # (the market's minute step runs too when the second crosses a minute: not this test's concern)
    assert [(r.job, r.due_at) for r in ran if r.job != "market"] == [("chain_deposits",
                                                                     sent_at + dt.timedelta(seconds=30))]
    d = svc.chain.deposit(dep.dep_id)
    assert (d.state, d.confirmations, d.acct_type) == (1, 3, FUNDING)
    assert balance(svc, sub, FUNDING, "ETH") == Decimal("1.25")
    with svc.db.read() as conn:  # the entry is stamped at the credit's due time
        at = conn.execute(select(journal_entries.c.created_at).where(
            journal_entries.c.idempotency_key == f"deposit:credit:{dep.dep_id}")).scalar_one()
    assert at == sent_at + dt.timedelta(seconds=30)

    svc.advance_clock(by=dt.timedelta(hours=1))
    d = svc.chain.deposit(dep.dep_id)
    assert (d.state, d.confirmations, d.completed_at) == (2, 5, sent_at + dt.timedelta(seconds=50))
    for _ in range(3):  # nothing happens twice
        svc.runner.run_due()
        svc.chain.run_due(svc.clock.now())
        svc.advance_clock(by=dt.timedelta(minutes=5))
    assert balance(svc, sub, FUNDING, "ETH") == Decimal("1.25") and credit_entries(svc, dep.dep_id) == 1
    assert svc.audit().ok


def test_racing_runners_credit_each_deposit_once(sandbox: Services) -> None:
    svc = sandbox
    master, sub = broker_with_sub(svc)
    svc.chain.configure_chain("USDT-TRC20", {"confirmations": 1, "unlock_confirmations": 2, "block_seconds": 3})
    addr = svc.chain.create_address(master, "chainSub01", "USDT", to=TRADING)
    sent = [svc.chain.send_deposit(SendDeposit(addr=addr.addr, ccy="USDT", amt=Decimal(n))) for n in range(1, 9)]
    assert svc.sandbox_clock is not None
    svc.sandbox_clock.set_to(svc.clock.now() + dt.timedelta(minutes=1))
    runners = [JobRunner(svc.db, svc.clock, svc.jobs, [svc.chain, svc.withdrawals]) for _ in range(2)]
    threads = [threading.Thread(target=r.run_due) for r in runners]
    threads.append(threading.Thread(target=svc.chain.run_due, args=(svc.clock.now(),)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert balance(svc, sub, TRADING, "USDT") == Decimal(36)
    assert all(credit_entries(svc, d.dep_id) == 1 for d in sent)
    assert {svc.chain.deposit(d.dep_id).state for d in sent} == {2}
    assert svc.chain.next_due() is None and svc.chain.run_due(svc.clock.now()) == 0
    assert svc.audit().ok


def test_deposits_interleave_with_the_daily_runs_in_due_order(sandbox: Services) -> None:
    svc = sandbox
    assert svc.sandbox_clock is not None
    # the next T-day boundary (00:00 business time), at least an hour away
    boundary = svc.calendar.period_of_day(svc.calendar.day(svc.clock.now() + dt.timedelta(hours=1))).end
    svc.advance_clock(to=boundary - dt.timedelta(minutes=15))
    master, sub = broker_with_sub(svc)
    svc.chain.configure_chain("ETH-ERC20", {"confirmations": 2, "unlock_confirmations": 4, "block_seconds": 300})
    addr = svc.chain.create_address(master, "chainSub01", "ETH")
    before = svc.chain.send_deposit(SendDeposit(addr=addr.addr, ccy="ETH", amt=Decimal("2")))  # credit: b - 5 min
    svc.advance_clock(to=boundary - dt.timedelta(minutes=5))
    ran_first = svc.chain.deposit(before.dep_id)
    assert ran_first.state == 1  # credited, as its due time has come
    after = svc.chain.send_deposit(SendDeposit(addr=addr.addr, ccy="ETH", amt=Decimal("3")))  # credit: b + 5 min
    ran = svc.advance_clock(to=boundary + dt.timedelta(minutes=30))
    order = [(r.job, r.due_at - boundary) for r in ran if r.job.startswith(("chain_", "staking_rewards:ETH"))]
    m = dt.timedelta(minutes=1)
    assert order == [("staking_rewards:ETH", 0 * m), ("chain_deposits", 5 * m), ("chain_deposits", 15 * m)]
    assert [r.job for r in ran].index("staking_rewards:ETH") < [r.job for r in ran].index("chain_deposits")
    with svc.db.read() as conn:
        run_entry = conn.execute(select(func.max(journal_entries.c.id)).where(
            journal_entries.c.created_at == boundary)).scalar()
        credits = {d: conn.execute(select(journal_entries.c.id, journal_entries.c.created_at).where(
            journal_entries.c.idempotency_key == f"deposit:credit:{d}")).one() for d in (before.dep_id, after.dep_id)}
    assert credits[before.dep_id].created_at == boundary - 5 * m
    assert credits[after.dep_id].created_at == boundary + 5 * m
    assert credits[before.dep_id].id < credits[after.dep_id].id
    if run_entry is not None:  # the day's runs posted something: between the two credits
        assert credits[before.dep_id].id < run_entry < credits[after.dep_id].id
    assert {svc.chain.deposit(d).state for d in (before.dep_id, after.dep_id)} == {2}
    assert balance(svc, sub, FUNDING, "ETH") == Decimal(5)
    with svc.db.read() as conn:
        assert conn.execute(select(deposits.c.state)).scalars().all() == [2, 2]
    assert svc.audit().ok
