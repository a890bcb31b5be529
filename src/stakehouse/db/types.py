"""Column types: exact money on every database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

from stakehouse.money import STORAGE_DIGITS, STORAGE_SCALE, to_plain


def money_from_db(value: Any) -> Decimal:
    """A stored amount as a Decimal without trailing zeros: SQLite's TEXT is already canonical
    (``to_plain``), PostgreSQL's NUMERIC(38, 18) comes with 18 decimals."""
    if isinstance(value, str):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value.normalize() if value else Decimal(0)
    return Decimal(value).normalize() if value != 0 else Decimal(0)


def utc_from_db(value: Any) -> dt.datetime:
    """A stored moment (naive UTC text on SQLite, timestamptz on PostgreSQL) as aware UTC."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, dt.datetime)
    if moment.tzinfo is dt.UTC:
        return moment
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class Money(TypeDecorator[Decimal]):
    """NUMERIC(38, 18) on PostgreSQL; canonical decimal TEXT on SQLite.

    SQLite's NUMERIC affinity would turn ``'0.1'`` into a REAL, so money is stored there as
    text and all arithmetic happens on ``Decimal`` in Python (or through the exact
    ``decsum`` aggregate that :mod:`stakehouse.db.engine` registers on each connection).
    """

    impl = Numeric(STORAGE_DIGITS, STORAGE_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(STORAGE_DIGITS, STORAGE_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("money must never be a float")
            value = Decimal(value)
        return to_plain(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else money_from_db(value)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in Python on every database (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else utc_from_db(value)
