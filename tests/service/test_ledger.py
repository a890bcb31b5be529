"""The ledger on real databases: invariants under arbitrary deposits and transfers, exact money,
idempotency, reversals, and overdraft refused under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from stakehouse.assets.service import TransferRequest
from stakehouse.config import Settings
from stakehouse.db.tables import ledger_accounts, postings
from stakehouse.errors import DomainError, InsufficientBalance
from stakehouse.ledger.rules import AccountRef, Leg
from stakehouse.security import new_server_key
from stakehouse.wiring import Services


@pytest.fixture(scope="module")
def services(backend: str, make_db: Callable[[str], str]) -> Iterator[Services]:
    s = Services(Settings(database_url=make_db(backend), server_key=new_server_key(), admin_token="t"))
    yield s
    s.close()


def test_38_digit_18_decimal_amount_round_trips(services: Services) -> None:
    huge = Decimal("12345678901234567890.123456789012345678")
    assert len(huge.as_tuple().digits) == 38
    with services.db.write() as conn:
        services.ledger.post(conn, type="test", ref="x", idempotency_key="roundtrip-38", at=services.clock.now(),
                             legs=[Leg(AccountRef.system("custody", "RT"), -huge),
                                   Leg(AccountRef.system("issuance", "RT"), huge)])
    with services.db.read() as conn:
        stored = conn.execute(select(postings.c.amount).where(postings.c.ccy == "RT").order_by(postings.c.id)).all()
        cached = conn.execute(select(ledger_accounts.c.available).where(ledger_accounts.c.ccy == "RT")
                              .order_by(ledger_accounts.c.owner)).scalars().all()
    assert [r.amount for r in stored] == [-huge, huge]
    assert sorted(cached) == [-huge, huge]
    if services.db.is_sqlite:  # stored as exact text, never REAL
        with services.db.read() as conn:
            kinds = conn.exec_driver_sql("SELECT DISTINCT typeof(amount) FROM postings").scalars().all()
        assert kinds == ["text"]


def test_idempotency_key_posts_once(services: Services) -> None:
    user = services.accounts.create_user()
    first = services.chain.credit_deposit(user.uid, "USDT", Decimal("5"), idempotency_key=f"k-{user.uid}")
    again = services.chain.credit_deposit(user.uid, "USDT", Decimal("5"), idempotency_key=f"k-{user.uid}")
    assert again.dep_id == first.dep_id
    assert services.assets.balances(user.uid, 6)[0].available == Decimal("5")


def test_reversal_is_a_compensating_entry(services: Services) -> None:
    user = services.accounts.create_user()
    dep = services.chain.credit_deposit(user.uid, "BTC", Decimal("0.3"))
    with services.db.read() as conn:
        entry_id = conn.exec_driver_sql(f"SELECT entry_id FROM deposits WHERE dep_id = {int(dep.dep_id)}").scalar_one()
    with services.db.write() as conn:
        rev = services.ledger.reverse(conn, entry_id=entry_id, reason="credited to the wrong user",
                                      at=services.clock.now())
        again = services.ledger.reverse(conn, entry_id=entry_id, reason="twice", at=services.clock.now())
    assert rev.created and not again.created
    assert services.assets.balances(user.uid, 6)[0].available == 0
    with services.db.read() as conn:
        count = conn.exec_driver_sql(f"SELECT count(*) FROM journal_entries WHERE id IN ({entry_id}, {rev.entry_id})")
        assert count.scalar_one() == 2
    assert services.audit().ok


amount = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000"), places=6)
op = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, 2), st.sampled_from([6]), amount),
    st.tuples(st.just("transfer"), st.integers(0, 2), st.sampled_from([6, 18]), amount),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(op, min_size=1, max_size=12))
def test_any_sequence_keeps_the_books(services: Services, ops: list[tuple[str, int, int, Decimal]]) -> None:
    uids = [services.accounts.create_user().uid for _ in range(3)]
    model: dict[tuple[str, int], Decimal] = {(u, t): Decimal(0) for u in uids for t in (6, 18)}
    for kind, who, acct, amt in ops:
        uid = uids[who]
        if kind == "deposit":
            services.chain.credit_deposit(uid, "USDT", amt)
            model[(uid, 6)] += amt
            continue
        other = 18 if acct == 6 else 6
        try:
            services.assets.transfer(uid, TransferRequest(ccy="USDT", amt=amt, from_type=acct, to_type=other))
        except InsufficientBalance:
            assert model[(uid, acct)] < amt
        else:
            model[(uid, acct)] -= amt
            model[(uid, other)] += amt
    for (uid, acct), expected in model.items():
        got = {b.ccy: b.available for b in services.assets.balances(uid, acct)}
        assert got.get("USDT", Decimal(0)) == expected
    report = services.audit()
    assert report.ok, report.as_dict()


def test_concurrent_transfers_never_overdraw(services: Services) -> None:
    user = services.accounts.create_user()
    services.chain.credit_deposit(user.uid, "USDT", Decimal("10"))
    results: list[str] = []
    lock = threading.Lock()

    def spend() -> None:
        try:
            services.assets.transfer(user.uid, TransferRequest(ccy="USDT", amt=Decimal("0.5"), from_type=6, to_type=18))
            outcome = "ok"
        except DomainError as exc:
            outcome = type(exc).__name__
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=spend) for _ in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 20
    assert results.count("InsufficientBalance") == 40
    funding = services.assets.balances(user.uid, 6)[0]
    trading = services.assets.balances(user.uid, 18)[0]
    assert (funding.available, trading.available) == (Decimal(0), Decimal("10"))
    assert services.audit().ok
