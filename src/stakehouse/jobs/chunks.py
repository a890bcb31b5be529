"""Chunked runs: a daily run split into idempotent pieces that any worker or connection can do.

A run that scales with users (a million holders' rewards) is not one transaction. The runner
(``jobs/runner.py``) does it in three steps, each its own transaction:

1. **plan** (behind the job's barrier, so every write stamped before the period's end has
   committed): the job's ``plan`` returns the parameters every chunk shares (the day's rate, fixed
   here once) and the chunks (uid ranges). One ``job_run_plans`` row and one ``job_run_chunks`` row
   per chunk; a second process finds the plan and joins in.
2. **chunks**: each worker thread claims the first chunk not done (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL; SQLite's single writer serialises anyway), runs the job's ``chunk`` on it and marks it
   done with its totals, in the same transaction. A crash rolls back the chunk *and* its claim; the
   next worker does it again from scratch, so no chunk is paid twice and none is skipped. Each
   chunk posts its own balanced journal entry with its own idempotency key.
3. **finish**: once every chunk is done, the job's ``finish`` sees the summed totals (it writes the
   run's record, e.g. ``staking_reward_runs``), and the ``job_runs`` row is claimed: the period is
   done. Until then readers may see a run in progress, which the audit knows.

Chunks partition the uid space (the first starts unbounded, the last ends unbounded), so a uid
that appears after planning still falls in exactly one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection

from stakehouse.db.dialect import driver_params, driver_sql
from stakehouse.jobs.schedule import Period
from stakehouse.money import to_plain

#: The figures a chunk reports (holders, amounts), summed exactly into the run's totals.
Totals = dict[str, Decimal]
#: What every chunk of a run shares (fixed when the run is planned), JSON-safe.
Params = dict[str, str]


@dataclass(frozen=True)
class Chunk:
    number: int
    #: First uid of the chunk (inclusive); ``None``: from the first uid there is.
    lo: str | None
    #: First uid after the chunk (exclusive); ``None``: to the last uid there is.
    hi: str | None

    def where(self, column: str) -> str:
        """The SQL condition on a uid ``column`` (parameters ``chunk_lo``/``chunk_hi``)."""
        parts = [f"{column} >= %(chunk_lo)s" if self.lo is not None else "",
                 f"{column} < %(chunk_hi)s" if self.hi is not None else ""]
        return " AND ".join(p for p in parts if p) or "TRUE"

    def bounds(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """The same condition as :meth:`where`, for a SQLAlchemy uid column (empty: unbounded)."""
        lower = [column >= self.lo] if self.lo is not None else []
        return lower + ([column < self.hi] if self.hi is not None else [])

    def params(self) -> dict[str, str | None]:
        return {"chunk_lo": self.lo, "chunk_hi": self.hi}

    def contains(self, uid: str) -> bool:
        return (self.lo is None or uid >= self.lo) and (self.hi is None or uid < self.hi)


#: The chunk of every uid (a run done whole).
EVERY = Chunk(0, None, None)


@dataclass(frozen=True)
class Plan:
    params: Params
    chunks: list[Chunk]


@dataclass(frozen=True)
class Chunked:
    """A job run in chunks. ``plan(conn, period, size)`` fixes the parameters and splits the work
    into chunks of about ``size`` uids (no chunk at all: nothing to do); ``chunk(conn, period,
    params, chunk)`` does one and returns its totals; ``finish(conn, period, params, totals)``
    records the run and returns the line ``job_runs`` keeps."""

    plan: Callable[[Connection, Period, int], Plan]
    chunk: Callable[[Connection, Period, Params, Chunk], Totals]
    finish: Callable[[Connection, Period, Params, Totals], str]
    #: Totals every run reports even with no chunk (so a finished run always has them).
    totals: tuple[str, ...] = field(default=())


def uid_chunks(conn: Connection, uids: str, params: Mapping[str, Any], size: int) -> list[Chunk]:
    """Chunks of about ``size`` uids over the distinct uids that ``uids`` (an SQL query of one
    column ``uid``) selects, in uid order. One pass over that query; no chunk if it is empty."""
    modulo = "%%" if conn.dialect.name == "postgresql" else "%"  # a literal % beside psycopg's parameters
    marks = conn.exec_driver_sql(driver_sql(conn, (
        f"SELECT uid FROM (SELECT uid, row_number() OVER (ORDER BY uid) AS n FROM ({uids}) u) s "
        f"WHERE (n - 1) {modulo} %(chunk_size)s = 0 ORDER BY uid")),
        driver_params(conn, {**params, "chunk_size": size})).scalars().all()
    if not marks:
        return []
    bounds: list[str | None] = [None, *marks[1:], None]
    return [Chunk(i, bounds[i], bounds[i + 1]) for i in range(len(marks))]


def add_totals(into: Totals, more: Mapping[str, Decimal]) -> Totals:
    for key, value in more.items():
        into[key] = into.get(key, Decimal(0)) + value
    return into


def totals_json(totals: Mapping[str, Decimal]) -> str:
    return json.dumps({k: to_plain(v) for k, v in sorted(totals.items())})


def totals_from_json(text: str) -> Totals:
    return {k: Decimal(v) for k, v in json.loads(text or "{}").items()}


__all__ = ["EVERY", "Chunk", "Chunked", "Params", "Plan", "Totals", "add_totals", "totals_from_json", "totals_json",
           "uid_chunks"]
