"""The spot market under concurrency, on a real database: orders racing for one balance never
overdraw it, and a resting order is filled once however many workers run the market's step."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from stakehouse.assets.service import TransferRequest
from stakehouse.config import Settings
from stakehouse.db.tables import fills
from stakehouse.errors import DomainError, Refused
from stakehouse.security import new_server_key
from stakehouse.trading.service import OrderQuery, PlaceRequest
from stakehouse.wiring import Services
from tests.service.test_provider_staking import START, open_services

D = Decimal


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once in threads; what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def trader(s: Services, usdt: str) -> str:
    uid = s.accounts.create_user(kyc_level=2).uid
    s.chain.credit_deposit(uid, "USDT", D(usdt))
    s.assets.transfer(uid, TransferRequest(ccy="USDT", amt=D(usdt), from_type=6, to_type=18))
    return uid


def test_orders_racing_for_one_balance_never_overdraw_it(backend: str, make_db: Callable[[str], str]) -> None:
    s = open_services(make_db(backend), START)
    try:
        s.prices.set_price("BTC-USDT", D(50000))
        uid = trader(s, "1000")
        # 12 orders of 100 USDT each (6 market buys, 6 resting limit buys) for 1000 USDT: exactly 10 fit
        orders = [PlaceRequest("BTC-USDT", "cash", "buy", "market", D("100"), None) for _ in range(6)]
        orders += [PlaceRequest("BTC-USDT", "cash", "buy", "limit", D("0.0025"), D("40000")) for _ in range(6)]
        got = at_once([lambda r=r: s.trading.place(uid, r) for r in orders])  # type: ignore[misc]
        refused = [g for g in got if isinstance(g, DomainError)]
        assert len(refused) == 2 and all("Insufficient USDT" in g.message for g in refused), got
        assert not [g for g in got if isinstance(g, Exception) and not isinstance(g, DomainError)], got
        balance = {b.ccy: b for b in s.assets.balances(uid, 18)}["USDT"]
        resting = s.trading.orders(uid, OrderQuery(), live=True)
        assert balance.available == 0 and balance.locked == 100 * len(resting)
        assert s.audit().ok, s.audit().as_dict()
    finally:
        s.close()


def test_a_resting_order_fills_once_with_two_workers(make_db: Callable[[str], str]) -> None:
    """Two service instances (two workers' job runners) on one PostgreSQL database run the market's
    step at once: each crossed order is filled once, and the audit holds."""
    url = make_db("postgres")
    s = open_services(url, START)
    other = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(), admin_token="t",
                              log_level="WARNING"))
    try:
        s.prices.set_price("ETH-USDT", D(3000))
        uid = trader(s, "100000")
        placed = [s.trading.place(uid, PlaceRequest("ETH-USDT", "cash", "buy", "limit", D("1"), D(2990 - i)))
                  for i in range(10)]
        assert all(o.state == "live" for o in placed)
        s.prices.set_price("ETH-USDT", D(2900))  # crosses every bid within this minute
        s.sandbox_clock.set_to(START + dt.timedelta(minutes=5))  # type: ignore[union-attr]
        got = at_once([s.runner.run_due, other.runner.run_due, s.runner.run_due, other.runner.run_due])
        assert not [g for g in got if isinstance(g, Exception)], got
        filled = s.trading.orders(uid, OrderQuery(), live=False)
        assert sorted(o.ord_id for o in filled) == sorted(o.ord_id for o in placed)
        assert all(o.state == "filled" and o.fill is not None and o.fill.exec_type == "M" for o in filled)
        with s.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(fills).where(fills.c.uid == uid)).scalar_one() == 10
        eth = {b.ccy: b for b in s.assets.balances(uid, 18)}["ETH"]
        assert eth.available == D("9.992")  # 10 ETH less the 0.08 % maker fee
        assert s.audit().ok, s.audit().as_dict()
    finally:
        other.close()
        s.close()


def test_refusals_are_refusals(backend: str, make_db: Callable[[str], str]) -> None:
    """A post-only crossing the index changes nothing, through the service too."""
    s = open_services(make_db(backend), START)
    try:
        s.prices.set_price("SOL-USDT", D(150))
        uid = trader(s, "1000")
        before = s.assets.balances(uid, 18)
        got = at_once([lambda: s.trading.place(uid, PlaceRequest("SOL-USDT", "cash", "buy", "post_only", D(1),
                                                                  D(151)))])
        assert isinstance(got[0], Refused) and got[0].reason == "post_only_would_cross"
        assert s.assets.balances(uid, 18) == before
    finally:
        s.close()
