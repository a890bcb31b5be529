"""The spot market's pure rules (``trading/rules.py``): the decision per order type, what an order
locks, the trade's amounts and their rounding, the fee split rounded up, what a credit covers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.trading import rules
from stakehouse.trading.rules import Decision, InstrumentRules, OrderSpec, TradingReason

D = Decimal
BTC = InstrumentRules("BTC-USDT", "BTC", "USDT", D("0.1"), D("0.00000001"), D("0.00001"), D("9999999999"), 8, 6)

prices = st.decimals(min_value=D("0.1"), max_value=D(200000), places=1)
sizes = st.integers(min_value=1000, max_value=10**9).map(lambda n: D(n) / D(10**8))  # 0.00001 .. 10 BTC, on the lot
rates = st.decimals(min_value=D(0), max_value=D("0.05"), places=6)


@pytest.mark.parametrize(("ord_type", "side", "px", "index", "expected"), [
    ("market", "buy", None, "100", Decision.FILL),
    ("market", "sell", None, "100", Decision.FILL),
    ("limit", "buy", "100", "100", Decision.FILL),  # the index meets the price: taker at the index
    ("limit", "buy", "99.9", "100", Decision.REST),
    ("limit", "sell", "100", "100", Decision.FILL),
    ("limit", "sell", "100.1", "100", Decision.REST),
    ("post_only", "buy", "100", "100", Decision.REJECT),
    ("post_only", "buy", "99.9", "100", Decision.REST),
    ("post_only", "sell", "99.9", "100", Decision.REJECT),
    ("ioc", "buy", "101", "100", Decision.FILL),
    ("ioc", "buy", "99", "100", Decision.CANCEL),
    ("fok", "sell", "99", "100", Decision.FILL),
    ("fok", "sell", "101", "100", Decision.CANCEL),
])
def test_decision_per_order_type(ord_type: str, side: str, px: str | None, index: str, expected: Decision) -> None:
    spec = OrderSpec(side, ord_type, D(1), D(px) if px else None, "base_ccy")
    assert rules.decide(spec, D(index)) is expected


@given(prices, prices, st.sampled_from(rules.SIDES))
def test_a_resting_order_is_crossed_exactly_when_it_would_now_be_marketable(px: Decimal, index: Decimal,
                                                                            side: str) -> None:
    assert rules.crossed(side, px, index, index) == rules.marketable(side, px, index)
    spec = OrderSpec(side, "limit", D(1), px, "base_ccy")
    assert (rules.decide(spec, index) is Decision.FILL) == rules.marketable(side, px, index)


@pytest.mark.parametrize(("spec", "reason"), [
    (OrderSpec("buy", "limit", D("0.000001"), D(100), "base_ccy"), TradingReason.BELOW_MIN_SIZE),
    (OrderSpec("buy", "limit", D("0.000010001"), D(100), "base_ccy"), TradingReason.LOT_SIZE),
    (OrderSpec("buy", "limit", D("0.001"), D("100.05"), "base_ccy"), TradingReason.TICK_SIZE),
    (OrderSpec("buy", "limit", D("10000000000"), D(100), "base_ccy"), TradingReason.ABOVE_MAX_SIZE),
    (OrderSpec("buy", "market", D("10.0000001"), None, "quote_ccy"), TradingReason.LOT_SIZE),
    (OrderSpec("buy", "market", D("10.000001"), None, "quote_ccy"), None),
    (OrderSpec("sell", "limit", D("0.00001"), D("60000.1"), "base_ccy"), None),
])
def test_instrument_rules(spec: OrderSpec, reason: TradingReason | None) -> None:
    assert rules.check_order(spec, BTC) is reason


def test_default_target_currency_is_okxs() -> None:
    assert rules.default_tgt_ccy("buy", "market") == "quote_ccy"  # python-okx sz="10" spends 10 USDT
    assert rules.default_tgt_ccy("sell", "market") == "base_ccy"
    assert rules.default_tgt_ccy("buy", "limit") == "base_ccy"


@given(sizes, prices, prices)
def test_a_limit_buy_locks_enough_for_any_fill_at_or_below_its_price(sz: Decimal, px: Decimal,
                                                                     fill_px: Decimal) -> None:
    spec = OrderSpec("buy", "limit", sz, px, "base_ccy")
    ccy, locked = rules.lock_for(spec, BTC, px)
    assert ccy == "USDT" and locked >= sz * px and locked - sz * px < D("0.000001")
    fill_at = min(fill_px, px)
    t = rules.trade(spec, BTC, fill_at, locked)
    assert t is not None and t.fill_sz == sz and t.pay <= locked
    assert t.pay == rules.ceil_to(sz * fill_at, D("0.000001"))  # what the user pays: rounded up


@given(sizes, prices)
def test_a_sell_receives_its_proceeds_rounded_down(sz: Decimal, px: Decimal) -> None:
    spec = OrderSpec("sell", "market", sz, None, "base_ccy")
    ccy, locked = rules.lock_for(spec, BTC, px)
    assert (ccy, locked) == ("BTC", sz)
    t = rules.trade(spec, BTC, px, locked)
    if sz * px < D("0.000001"):
        assert t is None
        return
    assert t is not None and (t.pay_ccy, t.pay, t.get_ccy) == ("BTC", sz, "USDT")
    assert t.get <= sz * px < t.get + D("0.000001")


@given(st.integers(min_value=1, max_value=10**12).map(lambda n: D(n) / D(10**6)), prices)
def test_a_quote_sized_market_buy_never_spends_more_than_asked(quote: Decimal, index: Decimal) -> None:
    spec = OrderSpec("buy", "market", quote, None, "quote_ccy")
    ccy, locked = rules.lock_for(spec, BTC, index)
    assert (ccy, locked) == ("USDT", quote)
    t = rules.trade(spec, BTC, index, locked)
    if t is None:
        assert rules.floor_to(quote / index, BTC.lot_sz) == 0
        return
    assert t.pay <= quote and t.fill_sz == rules.floor_to(quote / index, BTC.lot_sz)


@given(st.decimals(min_value=D("0.00000001"), max_value=D(10**6), places=8), rates, rates)
def test_fee_split_rounds_up_and_adds_up(received: Decimal, rate: Decimal, base_rate: Decimal) -> None:
    total, base, markup = rules.fee_split(received, rate=rate, base_rate=base_rate, scale=8)
    assert total == base + markup  # exactly, whatever the rounding
    assert total >= received * rate or total == received  # up, in the platform's favour
    assert total - received * rate < D("0.00000001")
    assert base >= received * base_rate or base == received
    assert 0 <= total <= received and total == total.quantize(D("0.00000001"))


def test_fee_split_example() -> None:
    # 0.01 BTC received, 0.1 % base, 0.2 % with a 10 bp markup
    assert rules.fee_split(D("0.01"), rate=D("0.002"), base_rate=D("0.001"), scale=8) == (
        D("0.00002"), D("0.00001"), D("0.00001"))
    # 0.01666666 BTC at 0.1 %: 0.00001666666 rounds up to 0.00001667
    assert rules.fee_split(D("0.01666666"), rate=D("0.001"), base_rate=D("0.001"), scale=8)[0] == D("0.00001667")


@given(st.decimals(min_value=D("0.00000001"), max_value=D(10), places=8), prices,
       st.decimals(min_value=D(0), max_value=D(1000), places=6))
def test_a_credit_covers_what_it_can_and_never_more_than_it_holds(fee: Decimal, px: Decimal,
                                                                  remaining: Decimal) -> None:
    value = rules.ceil_to(fee * px, D("0.000001"))
    part, used = rules.credit_cover(fee, value, remaining, px, 8)
    assert 0 <= part <= fee and 0 <= used <= remaining
    if remaining >= value:
        assert (part, used) == (fee, value)  # the whole fee
    elif remaining > 0:
        assert used == remaining and part * px <= remaining  # what it can, and it is used up


def test_rounding_helpers() -> None:
    assert rules.ceil_to(D("1.0001"), D("0.01")) == D("1.01")
    assert rules.floor_to(D("1.0099"), D("0.01")) == D("1")
    assert rules.unit(6) == D("0.000001")
    assert rules.is_multiple(D("0.3"), D("0.1")) and not rules.is_multiple(D("0.35"), D("0.1"))
