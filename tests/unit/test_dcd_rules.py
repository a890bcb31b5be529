"""The DCD rule book (``dcd/rules.py``): what an order pays at expiry in each branch, rounded down
to the paid currency; the listing's times, strike ladder and product ids; the size checks."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.dcd import rules

D = Decimal
SCALES = {"BTC": 8, "USDT": 6}
amounts = st.decimals(min_value=D("0.0001"), max_value=D(1000), places=4)
yields = st.decimals(min_value=D(0), max_value=D("0.2"), places=8)
prices = st.decimals(min_value=D(1000), max_value=D(200000), places=2)


def down(x: Decimal, places: int) -> Decimal:
    return x.quantize(D(1).scaleb(-places), rounding=ROUND_DOWN)


@pytest.mark.parametrize(("opt", "sett", "amount", "ccy"), [
    ("C", "64000", "31775.818410", "USDT"),  # at or above the strike: sold at the strike
    ("C", "63000", "31775.818410", "USDT"),
    ("C", "62999.99", "0.50437807", "BTC"),  # below: the BTC back with its yield
])
def test_a_call_pays_by_the_settlement_price(opt: str, sett: str, amount: str, ccy: str) -> None:
    got = rules.settlement(opt, D("0.5"), D("0.00875614"), D(63000), D(sett), ccy="BTC", alt_ccy="USDT",
                           scales=SCALES)
    assert (got.amount, got.ccy, got.yield_amt) == (D(amount), ccy, D("0.00437807"))


@pytest.mark.parametrize(("sett", "amount", "ccy"), [
    ("57000", "0.17705593", "BTC"),  # at or below the strike: bought at the strike
    ("50000", "0.17705593", "BTC"),
    ("57000.01", "10092.1885", "USDT"),  # above: the USDT back with its yield
])
def test_a_put_pays_by_the_settlement_price(sett: str, amount: str, ccy: str) -> None:
    got = rules.settlement("P", D(10000), D("0.00921885"), D(57000), D(sett), ccy="BTC", alt_ccy="USDT",
                           scales=SCALES)
    assert (got.amount, got.ccy, got.yield_amt) == (D(amount), ccy, D("92.1885"))


@given(amounts, yields, prices, prices, st.sampled_from(["C", "P"]))
def test_payouts_are_the_grown_notional_rounded_down(notional: Decimal, y: Decimal, stk: Decimal, sett: Decimal,
                                                     opt: str) -> None:
    if opt == "P":
        notional *= 100  # USDT
    got = rules.settlement(opt, notional, y, stk, sett, ccy="BTC", alt_ccy="USDT", scales=SCALES)
    grown = notional * (1 + y)
    exact = {("C", "USDT"): grown * stk, ("C", "BTC"): grown, ("P", "BTC"): grown / stk, ("P", "USDT"): grown}[
        (opt, got.ccy)]
    assert got.amount == down(exact, SCALES[got.ccy]) and got.amount <= exact
    if opt == "C":
        assert got.ccy == ("USDT" if sett >= stk else "BTC")
    else:
        assert got.ccy == ("BTC" if sett <= stk else "USDT")


def test_listing_times() -> None:
    at = dt.datetime(2026, 12, 5, 7, 59, tzinfo=dt.UTC)
    assert rules.listing_boundary(at) == dt.datetime(2026, 12, 4, 8, tzinfo=dt.UTC)
    assert rules.listing_boundary(at.replace(hour=8, minute=0)) == dt.datetime(2026, 12, 5, 8, tzinfo=dt.UTC)
    assert rules.interest_accrual_time(dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)) == dt.datetime(
        2026, 12, 5, 11, tzinfo=dt.UTC)
    assert rules.interest_accrual_time(dt.datetime(2026, 12, 5, 10, 59, 59, tzinfo=dt.UTC)) == dt.datetime(
        2026, 12, 5, 11, tzinfo=dt.UTC)


def test_the_strike_ladder_and_ids() -> None:
    pcts = [D(-8), D(-5), D(-2), D(2), D(5), D(8)]
    assert rules.ladder(D(60000), pcts, D(100)) == [("C", D(61200)), ("C", D(63000)), ("C", D(64800)),
                                                    ("P", D(55200)), ("P", D(57000)), ("P", D(58800))]
    assert rules.ladder(D(100), [D("0.1"), D("-0.1")], D(1)) == []  # rounds onto spot: left out
    assert rules.strike(D("60025"), D(0), D(50)) == D(60050)  # halves up
    expiry = dt.datetime(2023, 5, 12, 8, tzinfo=dt.UTC)
    assert rules.product_id("BTC", "USDT", expiry, D("29500.0"), "C") == "BTC-USDT-230512-29500-C"
    assert rules.product_id("ETH", "USDT", expiry, D("2012.5"), "P") == "ETH-USDT-230512-2012.5-P"


@pytest.mark.parametrize(("notional", "problem"), [
    ("0.0001", None), ("200", None), ("0.00005", "at least 0.0001"), ("200.0001", "at most 200"),
    ("0.00015", "a multiple of 0.0001"),
])
def test_sizes(notional: str, problem: str | None) -> None:
    assert rules.size_problem(D(notional), D("0.0001"), D(200), D("0.0001")) == problem


def test_lists() -> None:
    assert rules.parse_list("1, 2,7", integers=True) == [D(1), D(2), D(7)]
    assert rules.parse_list("-5,5") == [D(-5), D(5)]
    for text, integers in (("1,x", True), ("0", True), ("1.5", True), ("", False), ("inf", False)):
        with pytest.raises(ValueError):
            rules.parse_list(text, integers=integers)
