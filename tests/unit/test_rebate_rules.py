"""Rebate arithmetic (``rebates/rules.py``): per fill rounded down to 8 decimals, credits
excluded from the fees rebates are paid on, caps, a cut day spread over its fills, the FD split and
``if-rebate`` types, file ranges, dates; and the daily run's SQL rebate equals the pure rule on
both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.rebates import rules
from stakehouse.trading.rules import paid_in_money

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


@given(st.decimals(min_value=D(0), max_value=D(100), places=8), st.decimals(min_value=D(0), max_value=D(100), places=8),
       st.decimals(min_value=D(0), max_value=D(300), places=8))
def test_credits_pay_the_base_fee_first_and_are_not_rebated(base: Decimal, markup: Decimal, credit: Decimal) -> None:
    credit = min(credit, base + markup)  # credits never pay more than the fee
    net, money_markup = paid_in_money(base, markup, credit)
    assert net + money_markup + credit == base + markup
    assert 0 <= net <= base and 0 <= money_markup <= markup
    assert net == max(base - credit, D(0))  # the base first
    if credit == base + markup:  # a fee paid wholly by credits earns the broker nothing
        assert rules.fill_rebate(D("0.4"), net, money_markup) == 0


@given(st.lists(st.decimals(min_value=D(-5), max_value=D(50), places=8), max_size=20), st.data())
def test_a_cut_day_is_spread_over_its_fills_exactly(raws: list[Decimal], data: st.DataObject) -> None:
    whole = max(sum(raws, D(0)), D(0))
    target = data.draw(st.decimals(min_value=D(0), max_value=whole, places=8))
    shares = rules.allocate(raws, target)
    assert sum(shares, D(0)) == target and len(shares) == len(raws)
    if target == sum(raws, D(0)):
        assert shares == raws
    else:
        assert all(D(0) <= s <= max(r, D(0)) for s, r in zip(shares, raws, strict=True))


def test_a_cut_day_is_spread_in_time_order() -> None:
    assert rules.allocate([D(3), D(2), D(4)], D(4)) == [D(3), D(1), D(0)]
    assert rules.allocate([D(-1), D(2)], D(0)) == [D(0), D(0)]  # a negative day is paid as zero
    assert rules.allocate([D(-1), D(2)], D(1)) == [D(-1), D(2)]  # uncut: the fills' own rebates


@given(st.decimals(min_value=D(0), max_value=D(10**6), places=8), ratios)
def test_the_fd_split_adds_up_and_rounds_the_users_part_down(total: Decimal, client: Decimal) -> None:
    broker, user = rules.fd_split(total, client)
    assert broker + user == total and user == user.quantize(D("0.00000001"))
    assert user <= total * client < user + D("0.00000001")


def test_fd_fill_rebate_and_if_rebate_types() -> None:
    assert rules.fd_fill_rebate(D("0.3"), D("0.123456789")) == D("0.03703703")
    assert rules.fd_split(D("0.03703703"), D("0.2")) == (D("0.02962963"), D("0.0074074"))
    t = rules.fd_rebate_type
    assert t(expired=False, level="Lv1", month_so_far=D(0), cap=None) == "0"
    assert t(expired=True, level="VIP7", month_so_far=D(9), cap=D(1)) == "1"  # expired comes first
    assert t(expired=False, level="VIP6", month_so_far=D(0), cap=None) == "3"
    assert t(expired=False, level="VIP5", month_so_far=D(5), cap=D(5)) == "2"
    assert t(expired=False, level="VIP5", month_so_far=D("4.9"), cap=D(5)) == "0"


@pytest.mark.parametrize(("begin", "end", "reason"), [
    ("20260101", "20260102", None), ("20260101", "20260630", None),  # 180 days
    ("20260101", "20260701", rules.RebateReason.RANGE_TOO_LONG),
    ("20260102", "20260102", rules.RebateReason.END_BEFORE_BEGIN),
    ("20260103", "20260102", rules.RebateReason.END_BEFORE_BEGIN),
])
def test_file_ranges(begin: str, end: str, reason: rules.RebateReason | None) -> None:
    assert rules.file_range(rules.parse_day(begin, "begin"), rules.parse_day(end, "end")) is reason


@pytest.mark.parametrize(("code", "ok"), [("6099c63a8d75SCDE", True), ("6099c63a8d75SCD", False),
                                          ("6099c63a8d75SCDE1", False), ("6099c63a8d75SCD-", False),
                                          ("6099c63a8d75SCD\u0661", False)])
def test_broker_codes(code: str, ok: bool) -> None:
    assert rules.valid_code(code) is ok
