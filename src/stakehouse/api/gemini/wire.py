"""Gemini wire formats (spec section 7.7): JSON numbers written from ``Decimal``, times, and the
timestamps a payload may carry in ``since``/``until``.

Nothing here goes through ``float``: amounts are rendered from their exact decimal text, times
are converted with integer arithmetic.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from stakehouse.money import to_plain

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MS = dt.timedelta(milliseconds=1)
_US = dt.timedelta(microseconds=1)

#: An epoch timestamp at or above this is in milliseconds, below it in seconds (spec section 4).
MS_THRESHOLD = 10**11


class JsonNumber(str):
    """A JSON number with a fraction or an exponent, kept as its exact source text (never a float)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """JSON with exact numbers: integers as ``int``, other numbers as :class:`JsonNumber` text.
    ``NaN``/``Infinity`` are refused. Raises ``ValueError`` on anything that is not JSON."""
    return json.loads(text, parse_float=JsonNumber, parse_constant=_refuse_constant)


def num(value: Decimal | int) -> orjson.Fragment:
    """A JSON number literal for an exact amount: plain digits, no exponent, no trailing zeros."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, int):
        return orjson.Fragment(str(value).encode())
    if not isinstance(value, Decimal):
        raise TypeError(f"amounts are Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError("not a finite amount")
    return orjson.Fragment(to_plain(value).encode())


def dumps(data: Any) -> bytes:
    """The JSON bytes of a reply (amounts must already be :func:`num` fragments)."""
    return orjson.dumps(data)


def epoch_ms(moment: dt.datetime) -> int:
    """Epoch milliseconds, rounded down (exact integer arithmetic)."""
    return (moment - EPOCH) // _MS


def epoch_us(moment: dt.datetime) -> int:
    """Epoch microseconds (exact)."""
    return (moment - EPOCH) // _US


def iso_ms(moment: dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, e.g. ``2022-11-02T19:49:20.153Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# -- timestamps in payloads ---------------------------------------------------------------


class BadTimestamp(ValueError):
    pass


@dataclass(frozen=True)
class Stamp:
    """A payload timestamp: ``at`` is the moment written, ``last`` the last microsecond of the
    unit it was written in (``until`` is inclusive: ``until = X-1`` in ms covers all of ms X-1)."""

    at: dt.datetime
    last: dt.datetime


_EPOCH_TEXT = re.compile(r"([0-9]{1,20})(?:\.([0-9]{1,12}))?\Z")
_ISO_PARTS = re.compile(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}(?:[T ]([0-9]{2})(?::?([0-9]{2})(?::?([0-9]{2})"
                        r"(?:[.,]([0-9]+))?)?)?)?")
_DAY = dt.timedelta(days=1)


def _fraction_unit(digits: str | None, whole: dt.timedelta) -> dt.timedelta:
    if not digits:
        return whole
    return max(_US, whole / 10 ** len(digits)) if len(digits) <= 6 else _US


def _from_epoch(int_part: str, frac: str | None) -> Stamp:
    value = Decimal(int_part + ("." + frac if frac else ""))
    millis = value >= MS_THRESHOLD
    unit = _MS if millis else dt.timedelta(seconds=1)
    micros = int(value * (1000 if millis else 1_000_000))  # rounds toward zero: below 1 us is dropped
    try:
        at = EPOCH + dt.timedelta(microseconds=micros)
        step = _fraction_unit(frac, unit)
        return Stamp(at, at + (step - _US))
    except OverflowError:
        raise BadTimestamp("out of range") from None


def _from_iso(text: str) -> Stamp:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadTimestamp("not an ISO-8601 time or an epoch number") from None
    parts = _ISO_PARTS.match(text)
    step = dt.timedelta(seconds=1)
    if parts:
        hour, minute, second, frac = parts.groups()
        if hour is None:
            step = _DAY
        elif minute is None:
            step = dt.timedelta(hours=1)
        elif second is None:
            step = dt.timedelta(minutes=1)
        else:
            step = _fraction_unit(frac, dt.timedelta(seconds=1))
    try:
        # a time without a zone is read as UTC
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        return Stamp(at, at + (step - _US))
    except OverflowError:
        raise BadTimestamp("out of range") from None


def parse_stamp(value: object) -> Stamp:
    """``since``/``until``: an ISO-8601 string (a zone-less time is UTC) or an epoch number, as a JSON
    integer, a JSON number or a string; at or above 1e11 it counts milliseconds, else seconds."""
    if isinstance(value, bool) or value is None:
        raise BadTimestamp("not a timestamp")
    if isinstance(value, int):
        if not 0 <= value < 10**20:
            raise BadTimestamp("out of range")
        return _from_epoch(str(value), None)
    if not isinstance(value, str):
        raise BadTimestamp("not a timestamp")
    if not value or len(value) > 64:
        raise BadTimestamp("not a timestamp")
    epoch = _EPOCH_TEXT.match(value)
    if epoch:
        return _from_epoch(epoch.group(1), epoch.group(2))
    if isinstance(value, JsonNumber):  # 1e12, -5, 1.5e3: a number, but not a plain epoch
        raise BadTimestamp("not a plain epoch number")
    return _from_iso(value)
