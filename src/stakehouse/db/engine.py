"""Engines and transactions for SQLite (sandbox) and PostgreSQL (production).

``Database.write()`` opens a transaction that may change money. On SQLite it starts with
``BEGIN IMMEDIATE`` so writers queue on the database lock instead of failing half-way; on
PostgreSQL services lock the rows they change (``SELECT ... FOR UPDATE``) in a fixed order.
``Database.read()`` is a plain transaction for queries, ``Database.query()`` an autocommit
connection for one-statement reads.

``Database.hot`` runs the few single-statement reads that every API request makes (balances)
on the event loop through the bare driver: SQLAlchemy's per-statement machinery costs more than
the whole rest of such a request (bench/RESULTS.md). On SQLite it is one read-only connection
owned by the loop (a local file read never blocks for long); on PostgreSQL one psycopg
asynchronous connection, so the loop serves other requests while a statement is on the network
(callers batch their reads into it: ``stakehouse.db.batch``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
import structlog
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

from stakehouse.money import round_down, to_plain

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: ``meta`` key of the **stamp floor**: the end of the last period a run behind the exclusive
#: barrier has closed (ISO text; written by the job runner, read by every other write transaction
#: for the production clock: see ``clock.ProductionClock``).
STAMP_FLOOR_KEY = "stamp_floor"
#: The advisory lock key of the ledger barrier (see :meth:`Database.write`).
LEDGER_BARRIER = 727173


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not serve a statement for reasons of its own, not
    the request's: the server dropped or refused the connection, the pool had none to give, a lock
    or the SQLite write lock was not had in time, a deadlock victim. Nothing of the failed
    transaction was committed (a failure during COMMIT itself leaves the outcome unknown, which is
    why adapters retry only reads). The API adapters answer it as "busy, try again" (OKX 50013),
    never as an unexpected error."""
    cause: BaseException | None = exc
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = exc.orig
    if isinstance(cause, sqlite3.OperationalError):  # also "no such table" and the like: those are bugs
        return "locked" in str(cause) or "busy" in str(cause)
    return isinstance(cause, sa_exc.TimeoutError | psycopg.OperationalError)


class _DecSum:
    """Exact SUM over decimal TEXT for SQLite (registered as ``decsum``)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:
        if value is not None:
            self.total += Decimal(str(value))

    def finalize(self) -> str:
        return to_plain(self.total)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _decmul(a: Any, b: Any) -> str:
    """Exact ``a * b`` over decimal TEXT for SQLite (``decmul``)."""
    return to_plain(_dec(a) * _dec(b))


def _decadd(a: Any, b: Any) -> str:
    """Exact ``a + b`` over decimal TEXT for SQLite (``decadd``)."""
    return to_plain(_dec(a) + _dec(b))


def _deccmp(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b``, exactly, over decimal TEXT for SQLite
    (``deccmp``; text does not order as numbers do)."""
    x, y = _dec(a), _dec(b)
    return (x > y) - (x < y)


def _dectrunc(a: Any, scale: int) -> str:
    """``a`` rounded toward zero to ``scale`` decimals, as PostgreSQL's ``trunc(a, scale)`` (``dectrunc``)."""
    return to_plain(round_down(_dec(a), int(scale)))


def sqlite_path(url: str) -> str:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        # Every connection to an in-memory database would see its own empty database.
        raise ValueError(f"SQLite needs a database file path, not {url!r}")
    return path


def _sqlite_engine(url: str, *, immediate: bool | None) -> Engine:
    """``immediate``: True = BEGIN IMMEDIATE (writers), False = BEGIN (readers), None = autocommit."""
    Path(sqlite_path(url)).parent.mkdir(parents=True, exist_ok=True)
    # As many pooled connections as request threads, so none is opened per request.
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
        dbapi_conn.create_function("decmul", 2, _decmul, deterministic=True)
        dbapi_conn.create_function("decadd", 2, _decadd, deterministic=True)
        dbapi_conn.create_function("dectrunc", 2, _dectrunc, deterministic=True)
        dbapi_conn.create_function("deccmp", 2, _deccmp, deterministic=True)

    if immediate is not None:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def libpq_conninfo(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://...``) as libpq takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class HotReader(Protocol):
    """Single-statement reads in autocommit through the bare driver, awaited on the event loop.

    ``sql`` uses the driver's placeholders (see :meth:`Database.in_list`). Rows come back as
    the driver gives them (see :func:`stakehouse.db.types.money_from_db`)."""

    #: Whether a fetch waits for I/O (a network round trip) during which other requests run.
    waits: bool

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...

    async def close(self) -> None: ...


class _SqliteHotReader:
    """One read-only connection, used only from the event loop (statements run one at a time)."""

    waits = False

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        self._conn = conn
        return conn

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._conn or self._open()
        return conn.execute(sql, tuple(params)).fetchall()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


#: ``application_name`` of the hot-read connections (visible in ``pg_stat_activity``).
HOT_READS_APPLICATION = "stakehouse-hot-reads"


class _PgHotReader:
    """One psycopg asynchronous connection in autocommit per process, opened on first use by the
    loop that uses it. psycopg runs the statements of one connection one after the other; the
    callers (``db.batch``) keep one statement in flight and put everything waiting into it.

    Statements are prepared server-side after a few uses (psycopg's ``prepare_threshold``); put a
    transaction-pooling PgBouncer in front only with ``prepare_threshold=None``."""

    waits = True

    def __init__(self, url: str) -> None:
        self._conninfo = libpq_conninfo(url)
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._opening: asyncio.Lock | None = None

    async def _connect(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name=HOT_READS_APPLICATION,
                    options="-c TimeZone=UTC")  # moments arrive already in UTC
            return self._conn

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._conn if self._conn is not None and not self._conn.closed else await self._connect()
        try:
            return await self._fetch(conn, sql, params)
        except psycopg.OperationalError:
            # The server closed the connection (restart, failover, terminated backend): a read
            # can safely be tried once more on a new one.
            if not conn.closed:
                raise
            return await self._fetch(await self._connect(), sql, params)

    @staticmethod
    async def _fetch(conn: psycopg.AsyncConnection[tuple[Any, ...]], sql: str,
                     params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with conn.cursor() as cur:
            await cur.execute(sql.encode(), tuple(params))  # bytes: a built, not literal, query
            return await cur.fetchall()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self.pool_size = pool_size
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, immediate=True)
            self._read_engine = _sqlite_engine(url, immediate=False)
            self._autocommit_engine = _sqlite_engine(url, immediate=None)
            self.hot: HotReader = _SqliteHotReader(sqlite_path(url))
        else:
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
            self._read_engine = self.engine
            # No pre-ping here: it would double the round trips of every hot read; stale
            # connections are recycled instead.
            self._autocommit_engine = create_engine(url, pool_size=pool_size, max_overflow=20, pool_recycle=300,
                                                    isolation_level="AUTOCOMMIT")
            self.hot = _PgHotReader(url)
        #: Called with the stamp floor by every non-exclusive write transaction, after the barrier
        #: (the production clock's ``raise_floor``); ``None``: not read (the sandbox's clock is one
        #: row of the database already).
        self.on_stamp_floor: Callable[[dt.datetime], None] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def prefill(self, count: int) -> int:
        """Open ``count`` connections (at most the kept ``pool_size``) in each PostgreSQL pool now,
        all at once, and return them to their pools, which keep them. Returns how many were opened."""
        if self.is_sqlite:
            return 0
        count = min(count, self.pool_size)
        with ExitStack() as held:
            for engine in (self.engine, self._autocommit_engine):
                for _ in range(count):
                    held.enter_context(engine.connect())
        return 2 * count

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        """``column IN (values)`` in the bare driver's SQL, and its parameters (on PostgreSQL one
        array parameter, so the statement text and its prepared plan do not depend on the count)."""
        if self.is_sqlite:
            return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)
        return f"{column} = ANY(%s)", (list(values),)

    @contextmanager
    def write(self, *, exclusive: bool = False) -> Iterator[Connection]:
        """One money-changing transaction: committed on success, rolled back on any error.

        Every write transaction passes the **ledger barrier** first: on PostgreSQL a shared
        advisory lock held until commit; ``exclusive=True`` (the daily runs that read the books as
        of a moment) takes it exclusively, so it waits for the writes in flight and holds back new
        ones until it commits. Use cases read the time *inside* the transaction, after the
        barrier, so nothing is ever stamped before a run that cannot see it. On SQLite the write
        lock (``BEGIN IMMEDIATE``) is that barrier already.

        Past the barrier, a non-exclusive write reads the stamp floor for the clock (when
        ``on_stamp_floor`` is set): in its own statement, whose snapshot is taken after the lock was
        granted, so it sees the floor of every run that held the barrier before it."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
                conn.exec_driver_sql(f"SELECT {lock}({LEDGER_BARRIER})")
            if self.on_stamp_floor is not None and not exclusive:
                self._read_floor(conn, self.on_stamp_floor)
            yield conn

    def _read_floor(self, conn: Connection, report: Callable[[dt.datetime], None]) -> None:
        text = conn.exec_driver_sql(f"SELECT value FROM meta WHERE key = '{STAMP_FLOOR_KEY}'").scalar_one_or_none()
        if text:
            report(dt.datetime.fromisoformat(text))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read_engine.begin() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees the whole database as of one moment however many
        statements it runs (the audit compares balances with sums of postings in two): on
        PostgreSQL ``REPEATABLE READ`` (its ``READ COMMITTED`` gives each statement a new
        snapshot, so writes committing in between would look like broken books); on SQLite every
        read transaction is one snapshot already."""
        if self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self._read_engine.connect() as raw:
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn

    @contextmanager
    def query(self) -> Iterator[Connection]:
        """A connection in autocommit mode for single-statement reads on hot paths: no
        BEGIN/COMMIT round trips. Use :meth:`read` whenever several statements must agree."""
        with self._autocommit_engine.connect() as conn:
            yield conn

    def forget_connections(self) -> None:
        """Drop every idle pooled connection (those in use are left to fail on their own), so the
        next statements connect afresh: after the server dropped its connections (a restart, a
        failover, ``pg_terminate_backend``), the pools may hold several dead ones."""
        for engine in {self.engine, self._read_engine, self._autocommit_engine}:
            engine.dispose(close=False)

    def retry_after(self, exc: BaseException) -> bool:
        """Whether a read that failed with ``exc`` may be tried once more: the database could not
        answer (``unavailable``). Its connections are forgotten first, so the retry gets a new one."""
        if not unavailable(exc):
            return False
        log.warning("database_unavailable_retry", error=type(exc).__name__)
        self.forget_connections()
        return True

    async def read_twice(self, read: Callable[[], Awaitable[T]]) -> T:
        """``await read()``, tried once more on fresh connections when the database could not
        answer. Only for work that writes nothing."""
        try:
            return await read()
        except Exception as exc:
            if not self.retry_after(exc):
                raise
        return await read()

    def dispose(self) -> None:
        for engine in {self.engine, self._read_engine, self._autocommit_engine}:
            engine.dispose()
