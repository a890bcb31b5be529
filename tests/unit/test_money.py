from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.money import AmountError, fmt, parse_amount, round_down, to_plain

MAX = Decimal(10) ** 12


@pytest.mark.parametrize("raw", ["1", "0.1", "123.456", 5, "000.5", "999999999999"])
def test_accepts_plain_decimals(raw: object) -> None:
    assert parse_amount(raw, scale=8, max_amount=MAX) == Decimal(str(raw))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("0", "zero"), ("0.000", "zero"), ("-1", "negative"), ("1e3", "not a plain decimal"),
     ("NaN", "not a plain decimal"),
     ("Infinity", "not a plain decimal"), ("1.123456789", "too many decimals"), ("1000000000001", "too large"),
     ("", "not a plain decimal"), (" ", "not a plain decimal"), ("1,5", "not a plain decimal"), (True, "not a number"),
     (1.5, "not a number"), (None, "not a number"), ("9" * 200, "too long"), ("+1", "not a plain decimal")],
)
def test_rejects(raw: object, reason: str) -> None:
    with pytest.raises(AmountError) as exc:
        parse_amount(raw, scale=8, max_amount=MAX)
    assert exc.value.reason == reason


def test_trailing_zeros_beyond_scale_are_not_extra_precision() -> None:
    assert parse_amount("1.500000000", scale=8, max_amount=MAX) == Decimal("1.5")


def test_round_down_is_toward_zero() -> None:
    assert round_down(Decimal("1.999999999"), 8) == Decimal("1.99999999")
    assert round_down(Decimal("-1.999999999"), 8) == Decimal("-1.99999999")


@given(st.decimals(min_value=Decimal("-1e20"), max_value=Decimal("1e20"), places=18, allow_nan=False))
def test_plain_text_round_trips_without_exponent(value: Decimal) -> None:
    text = to_plain(value)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == value
    assert fmt(value) == text


@given(st.decimals(min_value=0, max_value=Decimal("1e12"), places=18, allow_nan=False), st.integers(0, 18))
def test_round_down_never_rounds_up(value: Decimal, scale: int) -> None:
    r = round_down(value, scale)
    assert r <= value and value - r < Decimal(1).scaleb(-scale)
