"""Exact money: parsing wire amounts, canonical text, round-down.

Every amount in Stakehouse is a :class:`decimal.Decimal` evaluated in a context wide enough
for NUMERIC(38, 18) arithmetic; nothing on a money path ever goes through ``float``.
"""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_DOWN, Decimal

#: Wide enough that sums and products of 38-digit amounts never round silently.
MONEY_CONTEXT = decimal.Context(prec=80, rounding=ROUND_DOWN, traps=[decimal.InvalidOperation])
decimal.DefaultContext.prec = MONEY_CONTEXT.prec
decimal.setcontext(MONEY_CONTEXT.copy())

#: Storage precision: NUMERIC(38, 18).
STORAGE_DIGITS = 38
STORAGE_SCALE = 18
MAX_STORAGE = Decimal(10) ** (STORAGE_DIGITS - STORAGE_SCALE)

ZERO = Decimal(0)

_PLAIN = re.compile(r"^[0-9]{1,40}(\.[0-9]{1,40})?$")


class AmountError(ValueError):
    """A wire amount that is not an acceptable positive decimal; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_amount(raw: object, *, scale: int, max_amount: Decimal, allow_zero: bool = False) -> Decimal:
    """Parse a wire amount strictly: plain decimal notation, at most ``scale`` decimals.

    Accepts a JSON string or a JSON number (ints; floats only via their text, which the caller
    must pass as text: a ``float`` is refused because it is already inexact).
    Rejects exponent notation, NaN/Infinity, signs, zero (unless ``allow_zero``), too many
    decimals and values above ``max_amount``. Never rounds.
    """
    if isinstance(raw, bool) or raw is None:
        raise AmountError("not a number")
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, str):
        text = raw.strip()
    elif isinstance(raw, Decimal):
        text = format(raw, "f")
    else:
        raise AmountError("not a number")
    if len(text) > 80:
        raise AmountError("too long")
    if text.startswith("-"):
        raise AmountError("negative")
    if not _PLAIN.match(text):
        raise AmountError("not a plain decimal")
    value = Decimal(text)
    if value != round_down(value, scale):
        raise AmountError("too many decimals")
    if value == 0 and not allow_zero:
        raise AmountError("zero")
    if value > max_amount:
        raise AmountError("too large")
    return value


def round_down(value: Decimal, scale: int) -> Decimal:
    """Round toward zero to ``scale`` decimal places."""
    return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_DOWN, context=MONEY_CONTEXT)


def to_plain(value: Decimal) -> str:
    """Canonical plain text: no exponent, no trailing zeros, ``"0"`` for zero."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt(value: Decimal | None, scale: int | None = None) -> str:
    """Wire text of an amount; ``""`` for ``None``. With ``scale``, rounded down and padded."""
    if value is None:
        return ""
    if scale is not None:
        return format(round_down(value, scale), "f")
    return to_plain(value)
