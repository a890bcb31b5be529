"""ND rebate arithmetic (``rebates/rules.py``): per fill rounded down to 8 decimals, sums per
sub-account, caps, dates."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.rebates import rules
from stakehouse.rebates.rules import FillFees

D = Decimal
usdt = st.decimals(min_value=D(0), max_value=D(10**6), places=12)
ratios = st.decimals(min_value=D(0), max_value=D(1), places=4)


def test_the_seed_reading_40_percent_of_net_fees_plus_all_of_the_markup() -> None:
    assert rules.fill_rebate(D("0.4"), D("0.6"), D("0.6")) == D("0.84")
    assert rules.fill_rebate(D("0.4"), D("0.123456789"), D(0)) == D("0.04938271")  # 0.0493827156 rounded down
    assert rules.fill_rebate(D("0.4"), D("0.5"), D("-0.3")) == D("-0.1")  # a discount below the base


@given(ratios, usdt, usdt)
def test_a_fill_rebate_is_rounded_down_never_up(ratio: Decimal, net: Decimal, markup: Decimal) -> None:
    got = rules.fill_rebate(ratio, net, markup)
    exact = ratio * net + markup
    assert got <= exact < got + D("0.00000001") and got == got.quantize(D("0.00000001"))


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), usdt, usdt), max_size=30), ratios)
def test_day_records_sum_each_sub_accounts_fills(fills: list[tuple[str, Decimal, Decimal]], ratio: Decimal) -> None:
    records = rules.day_records([FillFees(u, n, m) for u, n, m in fills], ratio)
    assert [r.uid for r in records] == sorted({u for u, _, _ in fills})
    for r in records:
        mine = [(n, m) for u, n, m in fills if u == r.uid]
        assert r.income == sum((rules.fill_rebate(ratio, n, m) for n, m in mine), D(0))
        assert (r.net_fee, r.markup_fee) == (sum((n for n, _ in mine), D(0)), sum((m for _, m in mine), D(0)))


@pytest.mark.parametrize(("income", "so_far", "cap", "expected"), [
    (D("5"), D(0), None, D("5")),
    (D("5"), D(0), D("3"), D("3")),
    (D("5"), D("2"), D("3"), D("1")),
    (D("5"), D("4"), D("3"), D(0)),  # the cap was lowered below what was paid: nothing more, never negative
    (D(0), D(0), D("3"), D(0)),
])
def test_monthly_cap(income: Decimal, so_far: Decimal, cap: Decimal | None, expected: Decimal) -> None:
    assert rules.capped(income, so_far, cap) == expected


@pytest.mark.parametrize(("text", "ok"), [("20261205", True), ("20260229", False), ("2026120", False),
                                          ("2026-12-05", False), ("\u0662\u0660\u0662\u0666\u0661\u0662\u0660\u0665",
                                                                  False)])
def test_dates(text: str, ok: bool) -> None:
    if ok:
        assert rules.parse_day(text, "begin").isoformat() == "2026-12-05"
    else:
        with pytest.raises(ValueError, match="begin"):
            rules.parse_day(text, "begin")
