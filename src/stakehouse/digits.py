"""ASCII digits: the only digits an identifier, an integer or a time cursor on the wire may hold.

``str.isdigit`` and ``int()`` accept more: superscripts (``"²".isdigit()``, which ``int`` then
refuses) and the digits of other scripts (``int("١٢٣") == 123``). Wire text is read here instead.
"""

from __future__ import annotations

#: The largest id a database row can have (a signed 64-bit integer).
INT64_MAX = 2**63 - 1


def ascii_digits(text: str, max_len: int) -> bool:
    """Whether ``text`` is 1..``max_len`` ASCII digits."""
    return 0 < len(text) <= max_len and text.isascii() and text.isdigit()


def row_id(text: str) -> int | None:
    """A row id (1..2^63-1) written in ASCII digits, else ``None`` (such an id matches no row)."""
    if not ascii_digits(text, 19):
        return None
    value = int(text)
    return value if 0 < value <= INT64_MAX else None
