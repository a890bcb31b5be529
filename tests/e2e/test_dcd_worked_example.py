"""The worked example of ``docs/dcd.md``, executed with ccxt on SQLite and PostgreSQL: a call and
a put on BTC/USDT, one expiring in the money and one out. Every figure of the document's tables is
read from the document and compared with the server's replies; the yields are also checked against
Black-Scholes computed here with floats, and the payouts against the rule of ``dcd.md`` §1."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from tests.api.test_broker_api import make_broker
from tests.api.test_dcd import dcd, funded_sub, hold, products
from tests.stack import Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal
DOC = Path(__file__).resolve().parents[2] / "docs" / "dcd.md"


def doc_table(anchor: str) -> dict[str, dict[str, str]]:
    """The markdown table after ``<!-- worked-example: anchor -->``, by its first column."""
    text = DOC.read_text()
    lines = text[text.index(f"<!-- worked-example: {anchor} -->"):].splitlines()[1:]
    rows = []
    for ln in (x for x in lines if x.strip()):
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[2:]}


def bs_yield(opt: str, s: float, k: float, years: float, vol: float) -> float:
    """Black-Scholes (zero rates) premium over the notional value, in floats: the independent check."""
    d1 = (math.log(s / k) + vol * vol * years / 2) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    n = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    if opt == "C":
        return (s * n(d1) - k * n(d2)) / s
    return (k * n(-d2) - s * n(-d1)) / k


def down(x: Decimal, places: str = "0.00000001") -> Decimal:
    return x.quantize(D(places), rounding=ROUND_DOWN)


def test_the_worked_example(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    stack.call("POST", "/admin/clock/freeze")
    hold(stack, "BTC-USDT", "60000")
    stack.call("PUT", "/admin/dcd/series/BTC/USDT", json={"tenors": "7", "strikePcts": "-5,5", "strikeTick": "100",
                                                           "vol": "0.55", "margin": "0.2"})
    now = dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"])
    day = (now + dt.timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)  # D 08:00 UTC
    stack.call("POST", "/admin/clock/advance", json={"to": (day + dt.timedelta(hours=2)).isoformat()})  # D 10:00
    expiry = day + dt.timedelta(days=7)
    ms = str(int(expiry.timestamp()) * 1000)
    call = next(p for p in products(stack, "C") if p["expTime"] == ms)
    put = next(p for p in products(stack, "P") if p["expTime"] == ms)
    shown = doc_table("products")
    for p in (call, put):
        row = shown[p["optType"]]
        assert (p["stk"], p["absYield"], p["annualYield"], p["notionalCcy"]) == (
            row["stk"], row["absYield"], row["annualYield"], row["notionalCcy"]), p
    years = (7 * 24 - 2) / (365 * 24)
    assert abs(float(call["absYield"]) - bs_yield("C", 60000, 63000, years, 0.55) * 0.8) < 1e-8
    assert abs(float(put["absYield"]) - bs_yield("P", 60000, 57000, years, 0.55) * 0.8) < 1e-8

    broker = make_broker(stack, funds={"USDT": "1"})
    alice = funded_sub(stack, broker, BTC="1", USDT="20000")
    q1 = dcd(stack, alice, "POST", "quote", {"productId": call["productId"], "notional": "0.5", "notionalCcy": "BTC",
                                             "tag": "stakehouse01", "markUp": "0.1"})["data"][0]
    q2 = dcd(stack, alice, "POST", "quote", {"productId": put["productId"], "notional": "10000",
                                             "notionalCcy": "USDT", "tag": "stakehouse01"})["data"][0]
    quotes = doc_table("quotes")
    for q, key in ((q1, "C"), (q2, "P")):
        assert (q["absYield"], q["annualYield"], q["markUp"] or "none") == (
            quotes[key]["absYield"], quotes[key]["annualYield"], quotes[key]["markUp"]), q
    o1 = dcd(stack, alice, "POST", "order", {"quoteId": q1["quoteId"], "clOrdId": "call1"})["data"]
    o2 = dcd(stack, alice, "POST", "order", {"quoteId": q2["quoteId"], "clOrdId": "put1"})["data"]
    assert stack.balances(alice.uid)[("6", "BTC")] == D("0.5")

    hold(stack, "BTC-USDT", "64000")
    stack.call("POST", "/admin/clock/advance", json={"to": (expiry + dt.timedelta(hours=2)).isoformat()})
    settled = doc_table("settlement")
    for o, key in ((o1, "C"), (o2, "P")):
        got = dcd(stack, alice, "GET", "order", {"ordId": o["ordId"]})["data"][0]
        row = settled[key]
        assert (got["state"], got["settPrice"], got["settAmt"], got["settCcy"], got["yieldAmt"], got["yieldCcy"]) == (
            "settled", row["settPrice"], row["settAmt"], row["settCcy"], row["yieldAmt"], row["yieldCcy"]), got
    y1, y2 = D(q1["absYield"]), D(q2["absYield"])
    assert D(settled["C"]["settAmt"]) == down(D("0.5") * (1 + y1) * 63000, "0.000001")  # USDT: 6 decimals
    assert D(settled["P"]["settAmt"]) == down(D(10000) * (1 + y2), "0.000001")
    balances = stack.balances(alice.uid)
    assert balances[("6", "USDT")] == D(10000) + D(settled["C"]["settAmt"]) + D(settled["P"]["settAmt"])
    markup = doc_table("broker")["markup"]["BTC"]
    assert stack.balances(broker.uid)[("6", "BTC")] == D(markup)
    stack.audit_ok()
