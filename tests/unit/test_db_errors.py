"""Which database errors mean "the database could not answer" (OKX 50013, retried for reads) and
which are bugs (50026)."""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

from stakehouse.db.engine import unavailable


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    """``orig`` as SQLAlchemy raises it (wrapped by its driver's error classes)."""
    base = sqlite3.Error if isinstance(orig, sqlite3.Error) else psycopg.Error
    error = sa_exc.DBAPIError.instance("SELECT 1", {}, orig, base, connection_invalidated=invalidated)
    assert isinstance(error, sa_exc.DBAPIError)
    return error


def test_busy_locked_or_dropped_is_unavailable() -> None:
    assert unavailable(wrapped(sqlite3.OperationalError("database is locked")))
    assert unavailable(sqlite3.OperationalError("database is busy"))
    assert unavailable(wrapped(psycopg.OperationalError("terminating connection due to administrator command")))
    assert unavailable(psycopg.OperationalError("connection refused"))  # the hot reads' bare driver
    assert unavailable(wrapped(psycopg.InterfaceError("the connection is lost"), invalidated=True))
    assert unavailable(sa_exc.TimeoutError("QueuePool limit reached"))


def test_mistakes_are_not_unavailable() -> None:
    assert not unavailable(wrapped(sqlite3.OperationalError("no such table: nope")))
    assert not unavailable(wrapped(psycopg.errors.UndefinedTable("relation does not exist")))
    assert not unavailable(wrapped(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")))
    assert not unavailable(ValueError("nope"))
