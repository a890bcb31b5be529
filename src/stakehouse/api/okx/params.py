"""Strict reading of OKX request parameters (query string for GET, JSON object for POST).

``""`` and ``null`` mean absent; unknown fields are ignored; numbers may arrive as JSON numbers
or strings and are read as exact decimals (JSON floats are kept as their source text, so
``1e3`` is seen, and refused, as written).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from stakehouse.api.okx.errors import OkxError, bad, missing
from stakehouse.clock import MAX_MS, from_ms
from stakehouse.digits import ascii_digits
from stakehouse.money import AmountError, parse_amount

MAX_TEXT = 128
_CCY = re.compile(r"^[A-Za-z0-9]{1,16}$")
_ALNUM = re.compile(r"^[A-Za-z0-9]{1,32}$")


class JsonNumber(str):
    """A JSON number with a fraction or exponent, kept as its exact source text."""


def _constant(name: str) -> JsonNumber:
    return JsonNumber(name)


def parse_json_body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body, parse_float=JsonNumber, parse_constant=_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurd nesting
        raise OkxError("50002") from None


def canonical(value: Any, max_len: int) -> str:
    """A parameter as a rate-limit key part: as text, stripped, upper-case, at most ``max_len``
    characters (``usdt`` and ``USDT`` are one currency, so one bucket)."""
    return "" if value is None else str(value).strip().upper()[:max_len]


class Params:
    def __init__(self, values: dict[str, Any], *, items: list[Params] | None = None) -> None:
        self.values = {k: v for k, v in values.items() if v is not None and v != ""}
        #: A batch route's array body, one ``Params`` per object (``None`` for an object body).
        self.items = items

    def has(self, name: str) -> bool:
        return name in self.values

    def text(self, name: str, *, required: bool = False, max_len: int = MAX_TEXT, pattern: re.Pattern[str] | None = None
             ) -> str:
        value = self.values.get(name)
        if value is None:
            if required:
                raise missing(name)
            return ""
        if isinstance(value, bool | dict | list):
            raise bad(name, "must be a string")
        text = str(value)
        if len(text) > max_len:
            raise bad(name, f"at most {max_len} characters")
        if not text.isprintable():  # control characters (NUL, which PostgreSQL cannot store) and the like
            raise bad(name, "must not contain control characters")
        if pattern is not None and not pattern.match(text):
            raise bad(name)
        return text

    def ccy(self, name: str = "ccy", *, required: bool = False) -> str:
        return self.text(name, required=required, pattern=_CCY).upper()

    def ccy_list(self, name: str = "ccy", *, max_items: int = 20) -> list[str]:
        raw = self.text(name, max_len=20 * 17)
        if not raw:
            return []
        items = [c.strip().upper() for c in raw.split(",")]
        if len(items) > max_items or any(not _CCY.match(c) for c in items):
            raise bad(name)
        return list(dict.fromkeys(items))

    def client_id(self, name: str = "clientId") -> str:
        return self.text(name, pattern=_ALNUM)

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = False, default: str = "") -> str:
        value = self.text(name, required=required)
        if not value:
            return default
        if value not in choices:
            raise bad(name)
        return value

    def integer(self, name: str, *, lo: int, hi: int, default: int | None = None) -> int:
        """An integer in ``lo..hi``; absent: ``default``, or 50014 when there is none."""
        value = self.values.get(name)
        if value is None:
            if default is None:
                raise missing(name)
            return default
        if isinstance(value, bool) or isinstance(value, JsonNumber):
            raise bad(name)
        text = str(value)
        if not re.fullmatch(r"-?[0-9]{1,12}", text):  # [0-9]: ASCII digits only
            raise bad(name)
        number = int(text)
        if not lo <= number <= hi:
            raise bad(name, f"must be between {lo} and {hi}")
        return number

    def optional_int(self, name: str, choices: tuple[int, ...]) -> int | None:
        if not self.has(name):
            return None
        number = self.integer(name, lo=min(choices), hi=max(choices))
        if number not in choices:
            raise bad(name)
        return number

    def amount(self, name: str, *, max_amount: Decimal, scale: int = 18, zero_code: str | None = None) -> Decimal:
        value = self.values.get(name)
        if value is None:
            raise missing(name)
        try:
            return parse_amount(value, scale=scale, max_amount=max_amount)
        except AmountError as exc:
            if zero_code and exc.reason in ("zero", "negative"):
                raise OkxError(zero_code) from None
            raise bad(name, exc.reason) from None

    def ms_time(self, name: str) -> dt.datetime | None:
        """A Unix-millisecond cursor (``after``/``before``/``begin``/``end``): ASCII digits, at most
        ``MAX_MS`` (9999-12-31T23:59:59.999Z)."""
        text = self.text(name, max_len=16)
        if not text:
            return None
        if not ascii_digits(text, 15) or int(text) > MAX_MS:
            raise bad(name, f"must be a Unix timestamp in milliseconds (0 to {MAX_MS})")
        return from_ms(int(text))

    def limit(self, name: str = "limit", *, default: int = 100, hi: int = 100) -> int:
        return self.integer(name, lo=1, hi=hi, default=default)
