"""The withdrawal simulator as an event source: transitions due by a moment happen in due-time
order, stamped with their due time, exactly once however many callers race (two processes' worth
of services on one database, on SQLite and PostgreSQL), and a cancel racing the broadcast either
wins whole or loses whole."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from stakehouse.config import Settings
from stakehouse.db.tables import journal_entries, postings, withdrawals
from stakehouse.errors import InvalidParameter
from stakehouse.errors import Refused as BrokerRefused
from stakehouse.funding import withdrawal_rules as rules
from stakehouse.funding.addresses import new_address
from stakehouse.funding.audit import CHECKS as AUDIT_CHECKS
from stakehouse.funding.withdrawals import Withdrawal, WithdrawalRequest
from stakehouse.ledger.audit import run_audit
from stakehouse.ledger.rules import FUNDING
from stakehouse.security import new_server_key
from stakehouse.wiring import Services

D = Decimal


@pytest.fixture
def pair(backend: str, make_db: Callable[[str], str]) -> Iterator[tuple[Services, Services]]:
    """Two sets of services (as two processes would have) over one sandbox database, clock frozen."""
    db, key = make_db(backend), new_server_key()
    first = Services(Settings(database_url=db, sandbox=True, server_key=key, key_expiry_enabled=False))
    assert first.sandbox_clock is not None
    first.sandbox_clock.freeze()
    second = Services(Settings(database_url=db, sandbox=True, server_key=key, key_expiry_enabled=False))
    yield first, second
    second.close()
    first.close()


def funded(svc: Services, ccy: str, amt: str) -> str:
    uid = svc.accounts.create_user().uid
    svc.chain.credit_deposit(uid, ccy, D(amt))
    return uid


def withdraw(svc: Services, uid: str, amt: str = "1", **kw: str) -> Withdrawal:
    return svc.withdrawals.withdraw(uid, WithdrawalRequest(ccy="ETH", amt=D(amt), dest=4,
                                                           to_addr=new_address("evm"), **kw))


def entries(svc: Services, key_prefix: str) -> int:
    with svc.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(journal_entries).where(
            journal_entries.c.idempotency_key.like(key_prefix + "%"))).scalar_one())


def move_clock(svc: Services, to: dt.datetime) -> None:
    assert svc.sandbox_clock is not None
    svc.sandbox_clock.set_to(to, running=False)


def audit_ok(svc: Services) -> None:
    """The whole audit, and the withdrawal invariants on their own (whether or not wired in)."""
    assert svc.audit().ok
    with svc.db.read() as conn:
        report = run_audit(conn, AUDIT_CHECKS)
    assert report.ok, report.as_dict()
    assert report.checks[-2].checked > 0


def test_transitions_in_due_order_stamped_with_their_due_time(pair: tuple[Services, Services]) -> None:
    svc, _ = pair
    uid = funded(svc, "ETH", "10")
    t0 = svc.clock.now()
    first = withdraw(svc, uid, "1")
    move_clock(svc, t0 + dt.timedelta(seconds=5))
    second = withdraw(svc, uid, "2")
    review = svc.settings.withdrawal_review_seconds
    assert svc.withdrawals.next_due() == t0 + dt.timedelta(seconds=review)
    assert svc.withdrawals.run_due(t0 + dt.timedelta(seconds=review - 1)) == 0

    # much later: every transition happens, each stamped with its own due time
    late = t0 + dt.timedelta(days=1)
    move_clock(svc, late)
    assert svc.withdrawals.run_due(late) == 4
    assert svc.withdrawals.next_due() is None and svc.withdrawals.run_due(late) == 0
    settle = dt.timedelta(seconds=first.required_confirmations * first.block_seconds)
    for w, created in ((first, t0), (second, t0 + dt.timedelta(seconds=5))):
        done = svc.withdrawals.get(w.wd_id)
        broadcast = created + dt.timedelta(seconds=review)
        assert (done.state, done.broadcast_at, done.completed_at) == (rules.SUCCESS, broadcast, broadcast + settle)
        assert done.tx_id.startswith("0x") and len(done.tx_id) == 66
        with svc.db.read() as conn:
            stamp = conn.execute(select(postings.c.created_at).join(
                journal_entries, journal_entries.c.id == postings.c.entry_id).where(
                journal_entries.c.idempotency_key == f"withdrawal:success:{w.wd_id}")).scalars().all()
        assert set(stamp) == {broadcast + settle}
    [balance] = svc.assets.balances(uid, FUNDING, ["ETH"])
    assert balance.available == D("10") - D("3") - 2 * first.fee and balance.locked == 0
    audit_ok(svc)


def test_two_racing_callers_make_each_transition_once(pair: tuple[Services, Services]) -> None:
    one, two = pair
    uid = funded(one, "ETH", "100")
    t0 = one.clock.now()
    made = [withdraw(one, uid, "0.5") for _ in range(12)]
    until = t0 + dt.timedelta(days=1)
    move_clock(one, until)
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run(svc: Services) -> None:
        try:
            start.wait()
            counts.append(svc.withdrawals.run_due(until))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(svc,)) for svc in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(counts) == 2 * len(made)  # broadcast + success, once each, whoever did them
    assert all(one.withdrawals.get(w.wd_id).state == rules.SUCCESS for w in made)
    assert entries(one, "withdrawal:success:") == len(made)
    [balance] = one.assets.balances(uid, FUNDING, ["ETH"])
    assert balance.available == D("100") - 12 * (D("0.5") + made[0].fee) and balance.locked == 0
    audit_ok(one)


def test_cancel_racing_the_broadcast_wins_or_loses_whole(pair: tuple[Services, Services]) -> None:
    one, two = pair
    uid = funded(one, "ETH", "100")
    t0 = one.clock.now()
    made = [withdraw(one, uid, "1") for _ in range(10)]
    due = t0 + dt.timedelta(seconds=one.settings.withdrawal_review_seconds)
    move_clock(one, due)
    refused: list[str] = []

    def cancel_all() -> None:
        for w in made:
            try:
                two.withdrawals.cancel(uid, w.wd_id)
            except BrokerRefused as exc:
                assert exc.reason == "not_cancellable"
                refused.append(w.wd_id)

    canceller = threading.Thread(target=cancel_all)
    canceller.start()
    one.withdrawals.run_due(due)
    canceller.join(timeout=120)
    states = {w.wd_id: one.withdrawals.get(w.wd_id).state for w in made}
    assert set(states.values()) <= {rules.CANCELED, rules.BROADCASTING}
    assert sorted(refused) == sorted(k for k, s in states.items() if s == rules.BROADCASTING)
    canceled = [k for k, s in states.items() if s == rules.CANCELED]
    assert entries(one, "withdrawal:refund:") == len(canceled)
    assert all(one.withdrawals.get(k).tx_id == "" for k in canceled)
    fee = made[0].fee
    [balance] = one.assets.balances(uid, FUNDING, ["ETH"])
    assert balance.locked == (len(made) - len(canceled)) * (D(1) + fee)
    audit_ok(one)


def test_operator_fail_and_retry_keys(pair: tuple[Services, Services]) -> None:
    svc, _ = pair
    uid = funded(svc, "ETH", "5")
    w = withdraw(svc, uid, "1", client_id="abc123")
    with pytest.raises(InvalidParameter):  # the same clientId for another address
        withdraw(svc, uid, "1", client_id="abc123")
    again = svc.withdrawals.withdraw(uid, WithdrawalRequest(ccy="ETH", amt=D("1"), dest=4, to_addr=w.to_addr,
                                                            client_id="abc123"))
    assert again == w and entries(svc, "withdrawal:hold:") == 1
    audit_ok(svc)  # a pending hold is covered by the locked balance
    failed = svc.withdrawals.fail(w.wd_id, "chain rejected it")
    assert (failed.state, failed.note) == (rules.FAILED, "chain rejected it")
    with pytest.raises(BrokerRefused):
        svc.withdrawals.fail(w.wd_id, "twice")
    assert entries(svc, "withdrawal:refund:") == 1 and svc.withdrawals.next_due() is None
    [balance] = svc.assets.balances(uid, FUNDING, ["ETH"])
    assert (balance.available, balance.locked) == (D("5"), D(0))
    audit_ok(svc)


def test_the_audit_finds_a_withdrawal_out_of_step_with_its_entries(pair: tuple[Services, Services]) -> None:
    svc, _ = pair
    uid = funded(svc, "ETH", "5")
    w = withdraw(svc, uid, "1")
    with svc.db.write() as conn:  # a success without its payout: what a buggy transition would leave
        conn.execute(withdrawals.update().where(withdrawals.c.wd_id == int(w.wd_id)).values(
            state=rules.SUCCESS, next_at=None))
    with svc.db.read() as conn:
        report = run_audit(conn, AUDIT_CHECKS)
    assert [len(c.violations) for c in report.checks] == [0, 0, 0, 0, 1, 0]  # the ledger itself is fine
    assert f"withdrawal {w.wd_id} in state 2" in report.checks[-2].violations[0]
