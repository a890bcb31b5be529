"""Engines and transactions for SQLite (sandbox) and PostgreSQL (production).

``Database.write()`` opens a transaction that may change money. On SQLite it starts with
``BEGIN IMMEDIATE`` so writers queue on the database lock instead of failing half-way; on
PostgreSQL services lock the rows they change (``SELECT ... FOR UPDATE``) in a fixed order.
``Database.read()`` is a plain transaction for queries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from stakehouse.money import to_plain


class _DecSum:
    """Exact SUM over decimal TEXT for SQLite (registered as ``decsum``)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:
        if value is not None:
            self.total += Decimal(str(value))

    def finalize(self) -> str:
        return to_plain(self.total)


def _sqlite_engine(url: str, *, immediate: bool | None) -> Engine:
    """``immediate``: True = BEGIN IMMEDIATE (writers), False = BEGIN (readers), None = autocommit."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if path == ":memory:":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=NullPool)
    else:  # as many pooled connections as request threads, so none is opened per request
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40,
                               max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        dbapi_conn.create_aggregate("decsum", 1, _DecSum)  # type: ignore[arg-type]

    if immediate is not None:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, immediate=True)
            self._read_engine = _sqlite_engine(url, immediate=False)
            self._autocommit_engine = _sqlite_engine(url, immediate=None)
        else:
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
            self._read_engine = self.engine
            # No pre-ping here: it would double the round trips of every hot read; stale
            # connections are recycled instead.
            self._autocommit_engine = create_engine(url, pool_size=pool_size, max_overflow=20, pool_recycle=300,
                                                    isolation_level="AUTOCOMMIT")

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One money-changing transaction: committed on success, rolled back on any error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read_engine.begin() as conn:
            yield conn

    @contextmanager
    def query(self) -> Iterator[Connection]:
        """A connection in autocommit mode for single-statement reads on hot paths: no
        BEGIN/COMMIT round trips. Use :meth:`read` whenever several statements must agree."""
        with self._autocommit_engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        for engine in {self.engine, self._read_engine, self._autocommit_engine}:
            engine.dispose()
