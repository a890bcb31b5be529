"""Pure withdrawal rules: amount, precision and limits, fee, address and tag parsing, internal
targets, and the simulator's transitions and timing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.assets.rules import Chain
from stakehouse.errors import InvalidParameter
from stakehouse.errors import Refused as BrokerRefused
from stakehouse.funding import withdrawal_rules as rules
from stakehouse.funding.addresses import eip55, new_address

D = Decimal
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

ETH = Chain(ccy="ETH", name="Ethereum", chain="ETH-ERC20", main_net=True, can_dep=True, can_wd=True,
            can_internal=True, need_tag=False, min_dep=D("0.00000001"), min_wd=D("0.005"), max_wd=D("10000"),
            wd_tick_sz=8, fee=D("0.0016"), confirmations=12, unlock_confirmations=64, block_seconds=12,
            address_format="evm")
XRP = dataclasses.replace(ETH, ccy="XRP", name="Ripple", chain="XRP-Ripple", need_tag=True, min_wd=D("20"),
                          max_wd=D("1000000"), wd_tick_sz=6, fee=D("0.2"), confirmations=1, block_seconds=4,
                          address_format="xrp")


def reason(exc: pytest.ExceptionInfo[BrokerRefused]) -> str:
    return exc.value.reason


# -- amounts ------------------------------------------------------------------------------


def test_limits_are_inclusive_and_apply_on_chain_only() -> None:
    rules.check_amount(ETH, D("0.005"), rules.ON_CHAIN)
    rules.check_amount(ETH, D("10000"), rules.ON_CHAIN)
    with pytest.raises(BrokerRefused) as low:
        rules.check_amount(ETH, D("0.00499999"), rules.ON_CHAIN)
    assert reason(low) == "below_min_withdrawal"
    with pytest.raises(BrokerRefused) as high:
        rules.check_amount(ETH, D("10000.00000001"), rules.ON_CHAIN)
    assert reason(high) == "above_max_withdrawal"
    rules.check_amount(ETH, D("0.00000001"), rules.INTERNAL)  # internal: no minimum
    rules.check_amount(ETH, D("20000"), rules.INTERNAL)


@given(st.decimals(min_value=D("0.005"), max_value=D("10000"), places=12, allow_nan=False, allow_infinity=False))
def test_precision_is_wd_tick_sz_decimals(amt: Decimal) -> None:
    fits = amt == amt.quantize(D("0.00000001"))
    try:
        rules.check_amount(ETH, amt, rules.ON_CHAIN)
        assert fits
    except InvalidParameter as exc:
        assert not fits and exc.field == "amt"


def test_zero_or_negative_amount_is_refused() -> None:
    for amt in (D(0), D("-1")):
        with pytest.raises(InvalidParameter):
            rules.check_amount(ETH, amt, rules.INTERNAL)


def test_fee_is_the_chains_on_chain_and_nothing_inside() -> None:
    assert rules.withdrawal_fee(ETH, rules.ON_CHAIN) == D("0.0016")
    assert rules.withdrawal_fee(ETH, rules.INTERNAL) == 0
    rules.check_sent_fee(ETH, rules.ON_CHAIN, None)
    rules.check_sent_fee(ETH, rules.ON_CHAIN, D("0.00160"))
    rules.check_sent_fee(ETH, rules.INTERNAL, D("0"))
    rules.check_sent_fee(ETH, rules.INTERNAL, D("0.0016"))  # ccxt sends the chain's fee
    for dest, sent in ((rules.ON_CHAIN, D("0.0015")), (rules.ON_CHAIN, D(0)), (rules.INTERNAL, D("1"))):
        with pytest.raises(InvalidParameter) as exc:
            rules.check_sent_fee(ETH, dest, sent)
        assert exc.value.field == "fee"


def test_suspended_chains() -> None:
    with pytest.raises(InvalidParameter):
        rules.check_chain(dataclasses.replace(ETH, can_wd=False), rules.ON_CHAIN)
    with pytest.raises(InvalidParameter):
        rules.check_chain(dataclasses.replace(ETH, can_internal=False), rules.INTERNAL)
    rules.check_chain(dataclasses.replace(ETH, can_wd=False), rules.INTERNAL)


# -- addresses and tags ------------------------------------------------------------------


def test_address_and_tag_split() -> None:
    assert rules.split_to_addr("rAbc") == ("rAbc", "")
    assert rules.split_to_addr("rAbc:123") == ("rAbc", "123")
    for bad in (":1", "rAbc:", "a:b:c", ""):
        with pytest.raises(InvalidParameter):
            rules.split_to_addr(bad)


def test_tags_where_needed_and_only_there() -> None:
    assert rules.check_tag(XRP, "0") == "0"
    assert rules.check_tag(XRP, str(2**32 - 1)) == str(2**32 - 1)
    for bad in ("", "abc", str(2**32), "12345678901", "-1"):
        with pytest.raises(InvalidParameter) as exc:
            rules.check_tag(XRP, bad)
        assert exc.value.field == "toAddr"
    assert rules.check_tag(ETH, "") == ""
    with pytest.raises(InvalidParameter):
        rules.check_tag(ETH, "1")


def test_addresses_of_the_chain_format() -> None:
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # an EIP-55 test vector
    assert rules.check_address(ETH, good) == good
    assert rules.check_address(ETH, good.lower()) == good.lower()  # no checksum: accepted
    i = next(i for i, ch in enumerate(good[2:], 2) if ch.isalpha())
    for bad in (good[:i] + good[i].swapcase() + good[i + 1:], good[:-1], new_address("tron"), "0x" + "g" * 40):
        with pytest.raises(InvalidParameter):
            rules.check_address(ETH, bad)
    assert eip55(good[2:].lower()) == good


def test_internal_targets() -> None:
    assert rules.internal_target("1234567890123456", None) == rules.InternalTarget(uid="1234567890123456")
    assert rules.internal_target("brokerTest1", None) == rules.InternalTarget(sub_name="brokerTest1")
    assert rules.internal_target("1234567890123456", 2).uid == "1234567890123456"
    for to, kind in (("brokerTest1", 2), ("a@b.com", None), ("sub name", 1), ("x" * 33, 1)):
        with pytest.raises(BrokerRefused) as exc:
            rules.internal_target(to, kind)
        assert reason(exc) == "bad_internal_address"
    rules.check_addr_type(rules.INTERNAL, 2)
    rules.check_addr_type(rules.ON_CHAIN, 1)
    rules.check_addr_type(rules.ON_CHAIN, None)
    with pytest.raises(InvalidParameter):
        rules.check_addr_type(rules.ON_CHAIN, 2)
    assert rules.to_addr_type(rules.INTERNAL, "123") == 2
    assert rules.to_addr_type(rules.INTERNAL, "name1") == 1
    assert rules.to_addr_type(rules.ON_CHAIN, "123") == 1


# -- transitions -----------------------------------------------------------------------------


def test_state_machine() -> None:
    due = rules.review_due(T0, 60)
    assert due == T0 + dt.timedelta(seconds=60)
    for waiting in (rules.WAITING, rules.APPROVED, rules.WAITING_TRANSFER):
        step = rules.next_step(waiting, due, confirmations=12, block_seconds=12)
        assert step == rules.Step(waiting, rules.BROADCASTING, due + dt.timedelta(seconds=144))
    assert step.next_at is not None
    assert rules.next_step(rules.BROADCASTING, step.next_at, confirmations=12, block_seconds=12) == rules.Step(
        rules.BROADCASTING, rules.SUCCESS, None)
    for final in rules.FINAL:
        with pytest.raises(ValueError):
            rules.next_step(final, due, confirmations=1, block_seconds=1)
    assert rules.CANCELLABLE < rules.FAILABLE and not rules.FAILABLE & rules.FINAL
    assert set(rules.FINAL) | set(rules.FAILABLE) <= set(rules.STATE_FILTER)


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=100),
       st.integers(min_value=1, max_value=600))
def test_confirmations_grow_one_per_block_up_to_the_count(elapsed: int, required: int, block: int) -> None:
    seen = rules.confirmations_at(T0, block, required, T0 + dt.timedelta(seconds=elapsed))
    assert seen == min(required, elapsed // block)
    assert rules.confirmations_at(None, block, required, T0) == 0
    # success falls due exactly when the count is reached
    settle = rules.settle_due(T0, required, block)
    assert rules.confirmations_at(T0, block, required, settle) == required
    assert rules.confirmations_at(T0, block, required, settle - dt.timedelta(seconds=1)) < required
