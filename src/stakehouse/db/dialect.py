"""What differs between SQLite and PostgreSQL, in one place: insert-or-ignore, row locks, and SQL
for the bare driver. Products call these and never branch on the dialect name for them.

Where a product computes differently on the two (set-based SQL on PostgreSQL, exact Python over
SQLite's decimal text), that branch stays with the computation: it is about the arithmetic, not
the dialect's plumbing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select

from stakehouse.money import to_plain

S = TypeVar("S", bound=Select[Any])


def dialect_insert(conn: Connection) -> Callable[..., Any]:
    """``INSERT`` with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for the connection's dialect."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def for_update(conn: Connection, stmt: S) -> S:
    """``stmt`` locking the rows it reads until the transaction ends: ``SELECT ... FOR UPDATE`` on
    PostgreSQL; unchanged on SQLite, where every write transaction holds the database's one write
    lock from its start (``BEGIN IMMEDIATE``), which serialises more than any row lock would."""
    return stmt.with_for_update() if conn.dialect.name == "postgresql" else stmt


def driver_sql(conn: Connection, sql: str) -> str:
    """SQL written with ``%(name)s`` parameters (psycopg's style) in the connection's own style."""
    return sql if conn.dialect.name == "postgresql" else re.sub(r"%\((\w+)\)s", r":\1", sql)


def driver_params(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """Values for the bare driver: SQLite gets money as canonical text and moments as the naive
    UTC text SQLAlchemy stores there (so that they compare as stored)."""
    if conn.dialect.name == "postgresql":
        return params
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, Decimal):
            v = to_plain(v)
        elif isinstance(v, dt.datetime):
            v = v.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        out[k] = v
    return out


def money_nonzero(conn: Connection, column: str) -> str:
    """SQL testing that a money column (an amount that is never negative) is above zero: NUMERIC on
    PostgreSQL; canonical decimal text on SQLite, where zero is exactly ``'0'``."""
    return f"{column} > 0" if conn.dialect.name == "postgresql" else f"{column} <> '0'"
