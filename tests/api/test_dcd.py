"""Dual-currency deposits through ccxt (unsigned ``products``, implicit methods with a sub-account
key for quote, order and orders) on SQLite and PostgreSQL: the listing, quotes racing their TTL,
orders settling in one clock advance with the payouts computed here from the rule of
``dcd.md`` §1, the broker's markup, bad input changing nothing, the audit after each."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import ccxt
from sqlalchemy import select

from stakehouse.db.tables import dcd_orders, dcd_quotes, journal_entries
from tests.api.test_broker_api import make_broker, name, ok, okx, reply, sub_key
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal
E8 = D("0.00000001")
USDT = "0.000001"  # the currency's scale


def hold(stack: Stack, inst_id: str, px: str) -> None:
    stack.call("PUT", f"/admin/markets/{inst_id}", json={"walk": False})
    stack.call("POST", f"/admin/markets/{inst_id}/price", json={"px": px})


def setup(stack: Stack, **series: str) -> None:
    """A frozen clock, BTC held at 60 000, a BTC/USDT series of one 7-day tenor at +-5 %, listed."""
    stack.call("POST", "/admin/clock/freeze")
    hold(stack, "BTC-USDT", "60000")
    stack.call("PUT", "/admin/dcd/series/BTC/USDT", json={"tenors": "7", "strikePcts": "-5,5", "strikeTick": "100",
                                                           **series})
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})  # the listing (at once on a first start)


def products(stack: Stack, opt_type: str) -> list[dict[str, Any]]:
    ex = ccxt.okx({"enableRateLimit": False})
    ex.urls["api"]["rest"] = stack.base_url
    got = reply(lambda p: ex.request("finance/sfp/dcd/products", ["public"], "GET", p),
                {"ccy": "BTC", "alternativeCcy": "USDT", "optType": opt_type, "tag": "stakehouse01"})
    assert got["code"] == "0", got
    data: list[dict[str, Any]] = got["data"]
    return data


def dcd(stack: Stack, c: Creds, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    ex = okx(stack, c)
    return reply(lambda p: ex.request(f"finance/sfp/dcd/{path}", ["private"], method, p), params)


def funded_sub(stack: Stack, broker: Creds, **funds: str) -> Creds:
    sub = name("dcd")
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    c = sub_key(stack, broker, sub)
    for ccy, amt in funds.items():
        stack.call("POST", f"/admin/users/{c.uid}/deposits", json={"ccy": ccy, "amt": amt})
    return c


def down(x: Decimal, places: str = "0.00000001") -> Decimal:
    return x.quantize(D(places), rounding=ROUND_DOWN)


def test_listing_quote_order_and_settlement(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    setup(stack)
    calls, puts = products(stack, "C"), products(stack, "P")
    assert [p["stk"] for p in calls] == ["63000"] and [p["stk"] for p in puts] == ["57000"]
    call, put = calls[0], puts[0]
    assert call["productId"].endswith("-63000-C") and call["notionalCcy"] == "BTC" and put["notionalCcy"] == "USDT"
    assert int(call["settTime"]) - int(call["expTime"]) == 2 * 3600 * 1000
    assert int(call["expTime"]) - int(call["stopTradingTime"]) == 3600 * 1000
    assert D("0") < D(call["absYield"]) < D("0.05") and D(put["absYield"]) > 0
    broker = make_broker(stack, funds={"USDT": "1"})
    alice = funded_sub(stack, broker, BTC="1", USDT="20000")

    q1 = dcd(stack, alice, "POST", "quote", {"productId": call["productId"], "notional": "0.5", "notionalCcy": "BTC",
                                             "tag": "stakehouse01", "clReqId": "q1", "markUp": "0.1"})
    assert q1["code"] == "0", q1
    quote_call = q1["data"][0]
    assert (quote_call["clReqId"], quote_call["markUp"], quote_call["ttlMs"]) == ("q1", "0.1", "30000")
    # the broker's markUp takes 10 % of the user's yield: the indicative (no markup) is higher
    assert D(0) < D(quote_call["absYield"]) < D(call["absYield"])
    o1 = dcd(stack, alice, "POST", "order", {"quoteId": quote_call["quoteId"], "clOrdId": "o1"})
    assert o1["code"] == "0" and isinstance(o1["data"], dict), o1  # an object, as the seed shows
    assert dcd(stack, alice, "POST", "order", {"quoteId": quote_call["quoteId"]})["code"] == "52921"
    q2 = dcd(stack, alice, "POST", "quote", {"productId": put["productId"], "notional": "10000", "notionalCcy": "USDT",
                                             "tag": "stakehouse01"})["data"][0]
    assert q2["markUp"] == ""
    o2 = dcd(stack, alice, "POST", "order", {"quoteId": q2["quoteId"]})["data"]
    balances = stack.balances(alice.uid)
    assert (balances[("6", "BTC")], balances[("6", "USDT")]) == (D("0.5"), D("10000"))
    live = dcd(stack, alice, "GET", "orders", {"state": "live"})["data"]
    assert [x["ordId"] for x in live] == [o2["ordId"], o1["data"]["ordId"]]  # newest first
    assert dcd(stack, alice, "GET", "order", {"clOrdId": "o1"})["data"][0]["state"] == "live"
    stack.audit_ok()

    # expiry in 7 days: BTC at 64 000 -> the call is exercised (paid in USDT), the put is not
    hold(stack, "BTC-USDT", "64000")
    before_broker = stack.balances(broker.uid).get(("6", "BTC"), D(0))
    exp = dt.datetime.fromtimestamp(int(call["expTime"]) / 1000, dt.UTC)
    stack.call("POST", "/admin/clock/advance", json={"to": (exp + dt.timedelta(hours=1)).isoformat()})
    pending = dcd(stack, alice, "GET", "order", {"ordId": o1["data"]["ordId"]})["data"][0]
    assert (pending["state"], pending["settPrice"], pending["settAmt"]) == ("pending_settled", "64000", "")
    stack.call("POST", "/admin/clock/advance", json={"seconds": 3600})
    settled = {x["ordId"]: x for x in dcd(stack, alice, "GET", "orders", {"state": "settled"})["data"]}
    y1, y2 = D(quote_call["absYield"]), D(q2["absYield"])
    call_paid = down(D("0.5") * (1 + y1) * 63000, USDT)  # USDT has 6 decimals
    put_paid = down(D("10000") * (1 + y2), USDT)
    first = settled[o1["data"]["ordId"]]
    assert (D(first["settAmt"]), first["settCcy"], D(first["yieldAmt"]), first["yieldCcy"]) == (
        call_paid, "USDT", down(D("0.5") * y1), "BTC")
    second = settled[o2["ordId"]]
    assert (D(second["settAmt"]), second["settCcy"]) == (put_paid, "USDT")
    assert stack.balances(alice.uid)[("6", "USDT")] == D("10000") + call_paid + put_paid
    # the broker's markup: what the 10 % took from the user's yield, in BTC
    markup = stack.balances(broker.uid).get(("6", "BTC"), D(0)) - before_broker
    assert D(0) < markup and D("0.5") * y1 + markup <= D("0.5") * D(call["absYield"]) + E8 * 2
    stack.audit_ok()


def test_quotes_race_their_ttl(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(dcd_quote_ttl_ms=2000)
    setup(stack)
    call = products(stack, "C")[0]
    broker = make_broker(stack)
    bob = funded_sub(stack, broker, BTC="1")
    q = dcd(stack, bob, "POST", "quote", {"productId": call["productId"], "notional": "0.1", "notionalCcy": "BTC",
                                          "tag": "t"})["data"][0]
    stack.call("POST", "/admin/clock/advance", json={"seconds": 2})  # at the TTL: too late
    assert dcd(stack, bob, "POST", "order", {"quoteId": q["quoteId"]})["code"] == "52922"
    q = dcd(stack, bob, "POST", "quote", {"productId": call["productId"], "notional": "0.1", "notionalCcy": "BTC",
                                          "tag": "t"})["data"][0]
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})  # within it
    assert dcd(stack, bob, "POST", "order", {"quoteId": q["quoteId"]})["code"] == "0"
    assert stack.balances(bob.uid)[("6", "BTC")] == D("0.9")
    stack.audit_ok()


def test_many_orders_settle_in_one_advance(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(job_chunk_size=3)  # a product's payment in chunks of 3 users: 4 users, 2 chunks
    setup(stack)
    call, put = products(stack, "C")[0], products(stack, "P")[0]
    broker = make_broker(stack)
    users = [funded_sub(stack, broker, BTC="1", USDT="1000") for _ in range(4)]
    expected: dict[str, tuple[Decimal, str]] = {}
    for n, u in enumerate(users):
        for product, notional, ccy in ((call, str(D("0.1") * (n + 1)), "BTC"), (put, str(100 * (n + 1)), "USDT")):
            q = dcd(stack, u, "POST", "quote", {"productId": product["productId"], "notional": notional,
                                                "notionalCcy": ccy, "tag": "t"})["data"][0]
            o = dcd(stack, u, "POST", "order", {"quoteId": q["quoteId"]})["data"]
            y = D(q["absYield"])
            # BTC falls to 50 000: the call is not exercised (BTC back), the put is (BTC at 57 000)
            amount = down(D(notional) * (1 + y)) if ccy == "BTC" else down(D(notional) * (1 + y) / 57000)
            expected[o["ordId"]] = (amount, "BTC")
    hold(stack, "BTC-USDT", "50000")
    ran = stack.call("POST", "/admin/clock/advance", json={"days": 8})
    assert ran["jobsRunCount"] > 0
    for u in users:
        for o in dcd(stack, u, "GET", "orders", {})["data"]:
            assert o["state"] == "settled" and o["settPrice"] == "50000"
            assert (D(o["settAmt"]), o["settCcy"]) == expected[o["ordId"]]
    with stack.services.db.read() as conn:
        assert len(conn.execute(dcd_orders.select()).all()) == 8
        keys = conn.execute(select(journal_entries.c.ref, journal_entries.c.idempotency_key)
                            .where(journal_entries.c.type == "dcd_settle")).all()
        last = max(u.uid for u in users)
    assert sorted(k for _, k in keys) == sorted(
        f"dcd:settle:{p['productId']}{suffix}" for p in (call, put) for suffix in ("", f":{last}"))
    stack.audit_ok()


def test_dcd_bad_input_changes_nothing(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    setup(stack)
    call = products(stack, "C")[0]
    broker = make_broker(stack, funds={"BTC": "1"})
    carol = funded_sub(stack, broker, BTC="0.05")
    plain = stack.new_user(env="live", funds={"BTC": "1"})
    ex = ccxt.okx({"enableRateLimit": False})
    ex.urls["api"]["rest"] = stack.base_url
    base = {"ccy": "BTC", "alternativeCcy": "USDT", "optType": "C", "tag": "t"}
    for params, code in [({**base, "ccy": ""}, "50014"), ({**base, "optType": "X"}, "51000"),
                         ({k: v for k, v in base.items() if k != "tag"}, "50014"),
                         ({**base, "tag": "x" * 17}, "51000")]:
        got = reply(lambda p: ex.request("finance/sfp/dcd/products", ["public"], "GET", p), params)
        assert got["code"] == code, (params, got)
    assert reply(lambda p: ex.request("finance/sfp/dcd/products", ["public"], "GET", p),
                 {**base, "ccy": "DOGE"})["code"] == "51000"  # no such currency
    assert reply(lambda p: ex.request("finance/sfp/dcd/products", ["public"], "GET", p),
                 {**base, "ccy": "SOL"})["data"] == []  # a currency without a series
    good = {"productId": call["productId"], "notional": "0.01", "notionalCcy": "BTC", "tag": "t"}
    with stack.services.db.read() as conn:
        quotes_before = len(conn.execute(dcd_quotes.select()).all())
    for creds, params, code in [
        (plain, good, "50030"), (broker, good, "50030"),
        (carol, {**good, "productId": "BTC-USDT-990101-1-C"}, "51000"),
        (carol, {**good, "notionalCcy": "USDT"}, "51000"),
        (carol, {**good, "notional": "0.00001"}, "51727"), (carol, {**good, "notional": "201"}, "51728"),
        (carol, {**good, "notional": "0.00015"}, "51000"), (carol, {**good, "notional": "0"}, "51000"),
        (carol, {**good, "notional": "-1"}, "51000"), (carol, {**good, "notional": "1e-2"}, "51000"),
        (carol, {**good, "markUp": "1"}, "51000"), (carol, {**good, "markUp": "-0.1"}, "51000"),
        (carol, {**good, "markUp": "0.123456789"}, "51000"), (carol, {k: v for k, v in good.items() if k != "tag"},
                                                              "50014"),
        (carol, {**good, "notional": "\u0661"}, "51000"),
    ]:
        got = dcd(stack, creds, "POST", "quote", params)
        assert got["code"] == code, (params, got)
    with stack.services.db.read() as conn:
        assert len(conn.execute(dcd_quotes.select()).all()) == quotes_before
    q = dcd(stack, carol, "POST", "quote", {**good, "clReqId": "same"})["data"][0]
    assert dcd(stack, carol, "POST", "quote", {**good, "clReqId": "same"})["code"] == "52925"
    assert dcd(stack, carol, "POST", "order", {"quoteId": "nope"})["code"] == "52927"
    other = funded_sub(stack, broker, BTC="1")
    assert dcd(stack, other, "POST", "order", {"quoteId": q["quoteId"]})["code"] == "52927"  # another user's
    big = dcd(stack, carol, "POST", "quote", {**good, "notional": "0.06"})["data"][0]
    assert dcd(stack, carol, "POST", "order", {"quoteId": big["quoteId"]})["code"] == "51736"  # 0.05 BTC only
    assert dcd(stack, carol, "POST", "order", {"quoteId": q["quoteId"], "clOrdId": "c1"})["code"] == "0"
    q3 = dcd(stack, carol, "POST", "quote", good)["data"][0]
    assert dcd(stack, carol, "POST", "order", {"quoteId": q3["quoteId"], "clOrdId": "c1"})["code"] == "52909"
    for params, code in [({}, "51000"), ({"ordId": "x"}, "51000"), ({"ordId": "999999"}, "51603")]:
        assert dcd(stack, carol, "GET", "order", params)["code"] == code, params
    for params, code in [({"beginId": "-1"}, "51000"), ({"limit": "101"}, "51000"), ({"begin": "abc"}, "51000"),
                         ({"state": "done"}, "51000")]:
        assert dcd(stack, carol, "GET", "orders", params)["code"] == code, params
    assert stack.balances(carol.uid)[("6", "BTC")] == D("0.04")
    # past stopTradingTime the product is off sale
    stop = dt.datetime.fromtimestamp(int(call["stopTradingTime"]) / 1000, dt.UTC)
    stack.call("POST", "/admin/clock/advance", json={"to": stop.isoformat()})
    assert dcd(stack, carol, "POST", "quote", good)["code"] == "51731"
    assert call["productId"] not in {p["productId"] for p in products(stack, "C")}
    stack.audit_ok()
