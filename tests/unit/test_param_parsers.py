"""Fuzzing the parameter parsers (hypothesis): whatever arrives, a parser returns a valid value or
raises the protocol's own error, never anything else (which would be a 500)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stakehouse.api.gemini import auth as gemini_auth
from stakehouse.api.gemini.errors import GeminiError
from stakehouse.api.okx.auth import parse_timestamp
from stakehouse.api.okx.errors import OkxError
from stakehouse.api.okx.params import Params, canonical, parse_json_body
from stakehouse.clock import MAX_MS, from_ms, to_ms
from stakehouse.digits import INT64_MAX, ascii_digits, row_id
from stakehouse.errors import InvalidParameter
from stakehouse.sandbox.control import MAX_ADVANCE, advance_target

#: What a JSON body or a query string can hold.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
#: Text that looks like a number more often than random text does.
numberish = st.from_regex(r"\A[-+ ]?[0-9\u00b2\u0661\uff11]{0,22}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,4})?\Z")
values = json_values | numberish


def call_or_okx_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except OkxError as err:
        assert err.code in ("50014", "51000", "58114"), err
        return err


@settings(max_examples=400, deadline=None)
@given(value=values)
@example(value="999999999999999")
@example(value="253402300800000")
@example(value="\u00b2")
@example(value="\u0661\u0662\u0663")
def test_every_reader_returns_a_value_or_an_okx_error(value: Any) -> None:
    p = Params({"x": value})
    text = call_or_okx_error(p.text, "x")
    if isinstance(text, str):
        assert text.isprintable() and len(text) <= 128
    ccy = call_or_okx_error(p.ccy, "x")
    if isinstance(ccy, str):
        assert ccy == ccy.upper() and (ccy == "" or re.fullmatch(r"[A-Z0-9]{1,16}", ccy))
    listed = call_or_okx_error(p.ccy_list, "x")
    if isinstance(listed, list):
        assert all(re.fullmatch(r"[A-Z0-9]{1,16}", c) for c in listed)
    number = call_or_okx_error(p.integer, "x", lo=-5, hi=10**6, default=7)
    if isinstance(number, int):
        assert -5 <= number <= 10**6
    call_or_okx_error(p.optional_int, "x", (0, 1, 2))
    call_or_okx_error(p.choice, "x", ("a", "b"))
    call_or_okx_error(p.client_id, "x")
    call_or_okx_error(p.limit, "x")
    amount = call_or_okx_error(p.amount, "x", max_amount=Decimal(10**12), scale=8, zero_code="58114")
    if isinstance(amount, Decimal):
        assert 0 < amount <= 10**12 and amount == amount.quantize(Decimal("1e-8"))
    moment = call_or_okx_error(p.ms_time, "x")
    if isinstance(moment, dt.datetime):
        assert isinstance(value, str | int) and to_ms(moment) == int(str(value))
    assert len(canonical(value, 16)) <= 16


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=20) | st.integers(min_value=0, max_value=10**20).map(str))
def test_a_cursor_is_ascii_digits_up_to_the_last_millisecond_a_datetime_holds(text: str) -> None:
    result = call_or_okx_error(Params({"after": text}).ms_time, "after")
    valid = bool(re.fullmatch(r"[0-9]{1,15}", text, flags=re.ASCII)) and int(text) <= MAX_MS
    if text == "":
        assert result is None
    elif valid:
        assert isinstance(result, dt.datetime) and to_ms(result) == int(text)
    else:
        assert isinstance(result, OkxError) and "after" in result.msg


@settings(max_examples=300, deadline=None)
@given(ms=st.integers(min_value=0, max_value=MAX_MS))
def test_milliseconds_round_trip_exactly(ms: int) -> None:
    assert to_ms(from_ms(ms)) == ms


@given(ms=st.integers(min_value=-(10**20), max_value=-1) | st.integers(min_value=MAX_MS + 1, max_value=10**20))
def test_milliseconds_outside_a_datetime_are_a_value_error(ms: int) -> None:
    with pytest.raises(ValueError):
        from_ms(ms)


@given(moment=st.datetimes(min_value=dt.datetime(1970, 1, 1), timezones=st.just(dt.UTC)))
def test_to_ms_is_the_floor_of_the_exact_millisecond(moment: dt.datetime) -> None:
    ms = to_ms(moment)
    assert from_ms(ms) <= moment < from_ms(ms) + dt.timedelta(milliseconds=1) or ms == MAX_MS


@settings(max_examples=300)
@given(text=st.text(max_size=25) | st.integers(min_value=-5, max_value=2**64).map(str))
def test_row_ids_are_ascii_and_fit_a_bigint(text: str) -> None:
    found = row_id(text)
    if re.fullmatch(r"[0-9]{1,19}", text, flags=re.ASCII) and 0 < int(text) <= INT64_MAX:
        assert found == int(text)
    else:
        assert found is None
    assert ascii_digits(text, 30) == bool(re.fullmatch(r"[0-9]{1,30}", text, flags=re.ASCII))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
@example(raw=b"[" * 30000 + b"]" * 30000)
@example(raw=b'{"a":' * 5000 + b"1" + b"}" * 5000)
def test_a_body_is_json_or_50002(raw: bytes) -> None:
    try:
        parse_json_body(raw)
    except OkxError as err:
        assert err.code == "50002"


@settings(max_examples=300)
@given(text=st.text(max_size=40) | st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,15}(Z|\+00:00)?\Z"))
def test_a_timestamp_header_parses_or_is_50112(text: str) -> None:
    try:
        assert parse_timestamp(text).tzinfo is not None
    except OkxError as err:
        assert err.code == "50112"


@settings(max_examples=300, deadline=None)
@given(payload=json_values | st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()))
def test_gemini_payloads_and_nonces_parse_or_are_a_gemini_error(payload: Any) -> None:
    header = payload if isinstance(payload, str) else base64.b64encode(json.dumps(payload).encode()).decode()
    try:
        decoded = gemini_auth.decode_payload(header)
    except GeminiError as err:
        assert err.reason == "InvalidJson"
        return
    try:
        nonce = gemini_auth.parse_nonce(decoded)
    except GeminiError as err:
        assert err.reason in ("MissingNonce", "InvalidNonce")
    else:
        assert 0 < nonce.value < gemini_auth.NONCE_LIMIT


NOW = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)


@given(to=st.none() | st.datetimes(timezones=st.none() | st.just(dt.UTC)),
       by=st.none() | st.timedeltas(min_value=dt.timedelta(days=-5000), max_value=dt.timedelta(days=5000)))
def test_a_clock_advance_is_forward_bounded_and_one_of_to_or_by(to: dt.datetime | None,
                                                                  by: dt.timedelta | None) -> None:
    try:
        target = advance_target(NOW, to=to, by=by)
    except InvalidParameter as exc:
        assert exc.reason
        return
    assert (to is None) != (by is None)
    assert NOW <= target <= NOW + MAX_ADVANCE
    assert target == (to if to is not None else NOW + by)  # type: ignore[operator]
