"""Parsing the web pages' form fields: the same strictness as the API's parameters, with messages
a person can act on. Pure: no request, no service (unit-tested in ``tests/unit/test_web_forms.py``).

A form field arrives as text (or not at all). Every parser raises :class:`FormError` with the
field's label and what is wrong; the page shows the message beside the form and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from stakehouse.digits import ascii_digits
from stakehouse.money import AmountError, parse_amount

_AMOUNT_REASONS = {
    "not a number": "is not a number",
    "too long": "is too long",
    "negative": "must not be negative",
    "not a plain decimal": "must be a plain decimal number such as 0.25 (digits and one point, no exponent)",
    "too many decimals": "has too many decimal places",
    "zero": "must be greater than 0",
    "too large": "is too large",
}
#: A form field longer than this is refused before it is looked at (no field needs more).
MAX_FIELD = 256


class FormError(ValueError):
    """A form field that cannot be used; ``str(error)`` is the message shown to the person."""

    def __init__(self, label: str, problem: str) -> None:
        super().__init__(f"{label} {problem}.")
        self.label = label


Form = Mapping[str, str]


def _raw(form: Form, name: str, label: str, *, required: bool) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):  # an uploaded file where text is expected
        raise FormError(label, "must be text")
    if len(value) > MAX_FIELD:
        raise FormError(label, "is too long")
    value = value.strip()
    if required and not value:
        raise FormError(label, "is required")
    return value


def amount(form: Form, name: str, label: str, *, max_amount: Decimal, scale: int = 18) -> Decimal:
    """A positive plain decimal with at most ``scale`` decimals (the API's rule for ``amt``)."""
    text = _raw(form, name, label, required=True)
    try:
        return parse_amount(text, scale=scale, max_amount=max_amount)
    except AmountError as exc:
        raise FormError(label, _AMOUNT_REASONS.get(exc.reason, "is not a valid amount")) from None


def choice(form: Form, name: str, label: str, options: Sequence[str], *, default: str | None = None) -> str:
    """One of ``options`` exactly; ``default`` when the field is empty (required when there is none)."""
    text = _raw(form, name, label, required=default is None)
    if not text and default is not None:
        return default
    if text not in options:
        raise FormError(label, "must be one of " + ", ".join(options))
    return text


def text(form: Form, name: str, label: str, *, max_len: int, required: bool = False, min_len: int = 0) -> str:
    """Printable text of at most ``max_len`` characters."""
    value = _raw(form, name, label, required=required)
    if len(value) > max_len or (value and len(value) < min_len):
        raise FormError(label, f"must be {min_len} to {max_len} characters" if min_len else
                        f"must be at most {max_len} characters")
    if not value.isprintable():
        raise FormError(label, "must not contain control characters")
    return value


def digits(form: Form, name: str, label: str, *, max_len: int, required: bool = True) -> str:
    """An id made of ASCII digits only (order ids, uids)."""
    value = _raw(form, name, label, required=required)
    if value and not ascii_digits(value, max_len):
        raise FormError(label, f"must be 1 to {max_len} digits 0-9")
    return value


def integer(form: Form, name: str, label: str, *, lo: int, hi: int, default: int | None = None) -> int:
    """A whole number from ``lo`` to ``hi`` in ASCII digits."""
    value = _raw(form, name, label, required=default is None)
    if not value and default is not None:
        return default
    if not ascii_digits(value, len(str(hi))) or not lo <= int(value) <= hi:
        raise FormError(label, f"must be a whole number from {lo} to {hi}")
    return int(value)


def day(form: Form, name: str, label: str, *, required: bool = False) -> dt.date | None:
    """A calendar day as ``YYYY-MM-DD`` (what a date input sends)."""
    value = _raw(form, name, label, required=required)
    if not value:
        return None
    if len(value) != 10 or not ascii_digits(value.replace("-", ""), 8) or value[4] != "-" or value[7] != "-":
        raise FormError(label, "must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise FormError(label, "is not a calendar day") from None


def checkboxes(values: Sequence[str], label: str, options: Sequence[str]) -> list[str]:
    """The checked boxes of a multi-valued field, each one of ``options``, without repeats."""
    out: list[str] = []
    for v in values:
        if v not in options:
            raise FormError(label, "must be among " + ", ".join(options))
        if v not in out:
            out.append(v)
    return out
