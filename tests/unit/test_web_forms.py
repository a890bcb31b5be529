"""The web forms' field parsers (pure): strict like the API, messages a person can act on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.api.web import forms
from stakehouse.api.web.kit import next_path

MAX = Decimal(10) ** 12


@pytest.mark.parametrize("raw", ["1e5", "1E-3", "-1", "+1", "0", "0.000", "NaN", "Infinity", "1,5", " ", "",
                                 "0x10", "\uff11", "1.", ".5", "1.2.3", "0.0000000000000000001", "10000000000000"])
def test_bad_amounts_are_refused_with_a_message(raw: str) -> None:
    with pytest.raises(forms.FormError) as err:
        forms.amount({"amt": raw}, "amt", "Amount", max_amount=MAX)
    assert str(err.value).startswith("Amount ")


def test_exponent_message_says_what_to_type() -> None:
    with pytest.raises(forms.FormError, match="plain decimal number"):
        forms.amount({"amt": "1e5"}, "amt", "Amount", max_amount=MAX)


def test_too_many_decimals_for_the_scale() -> None:
    assert forms.amount({"amt": "0.12345678"}, "amt", "Amount", max_amount=MAX, scale=8) == Decimal("0.12345678")
    with pytest.raises(forms.FormError, match="too many decimal places"):
        forms.amount({"amt": "0.123456789"}, "amt", "Amount", max_amount=MAX, scale=8)


@given(st.decimals(min_value=Decimal("0.00000001"), max_value=MAX, places=8, allow_nan=False, allow_infinity=False))
def test_every_plain_amount_round_trips_exactly(value: Decimal) -> None:
    text = format(value, "f")
    assert forms.amount({"amt": f" {text} "}, "amt", "Amount", max_amount=MAX) == value


@given(st.text(max_size=40))
def test_any_text_is_parsed_or_refused_never_crashes(raw: str) -> None:
    try:
        value = forms.amount({"amt": raw}, "amt", "Amount", max_amount=MAX)
    except forms.FormError:
        return
    assert value > 0 and str(value) == str(Decimal(raw.strip()))


def test_overlong_fields_are_refused_before_parsing() -> None:
    with pytest.raises(forms.FormError, match="too long"):
        forms.text({"label": "x" * 300}, "label", "Label", max_len=500)


def test_digits_only_ascii() -> None:
    assert forms.digits({"ordId": "123"}, "ordId", "Order id", max_len=20) == "123"
    for raw in ("12a", "١٢٣", "-1", "1 2", "1" * 21):
        with pytest.raises(forms.FormError, match="digits 0-9"):
            forms.digits({"ordId": raw}, "ordId", "Order id", max_len=20)
    with pytest.raises(forms.FormError, match="required"):
        forms.digits({}, "ordId", "Order id", max_len=20)


def test_choice_integer_day_checkboxes() -> None:
    assert forms.choice({"t": ""}, "t", "Type", ("a", "b"), default="") == ""
    assert forms.choice({"t": "b"}, "t", "Type", ("a", "b")) == "b"
    with pytest.raises(forms.FormError, match="one of a, b"):
        forms.choice({"t": "c"}, "t", "Type", ("a", "b"))
    assert forms.integer({"n": "3"}, "n", "KYC", lo=0, hi=3) == 3
    for raw in ("4", "-1", "٣", "1.0", "03x"):
        with pytest.raises(forms.FormError):
            forms.integer({"n": raw}, "n", "KYC", lo=0, hi=3)
    assert forms.day({"d": "2026-02-28"}, "d", "Begin") == dt.date(2026, 2, 28)
    for raw in ("2026-02-30", "2026/02/01", "26-02-01", "2026-2-1x"):
        with pytest.raises(forms.FormError):
            forms.day({"d": raw}, "d", "Begin")
    assert forms.checkboxes(["trade", "trade", "read_only"], "Permissions", ("read_only", "trade")) == [
        "trade", "read_only"]
    with pytest.raises(forms.FormError):
        forms.checkboxes(["admin"], "Permissions", ("read_only", "trade"))


def test_control_characters_are_refused() -> None:
    with pytest.raises(forms.FormError, match="control characters"):
        forms.text({"label": "a\x00b"}, "label", "Label", max_len=50)


@pytest.mark.parametrize(("raw", "expected"), [
    ("/broker", "/broker"), ("/earn?product=SOL", "/earn?product=SOL"), ("//evil.example/x", "/earn"),
    ("https://evil.example/", "/earn"), ("/\\evil.example", "/earn"), ("javascript:alert(1)", "/earn"), ("", "/earn"),
])
def test_next_path_is_only_one_of_our_own(raw: str, expected: str) -> None:
    assert next_path(raw, "/earn") == expected
