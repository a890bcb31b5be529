"""Exactly-once execution of periodic jobs.

Each (job, period) runs in one database transaction that first claims the row
``job_runs(job, period)`` (primary key) and then does the work. A second worker, a restart
or a re-run finds the claim and skips; a crash rolls the claim back with the work, so the
period runs again later. Jobs stamp what they post with the period's due time, not with the
moment the runner happened to reach them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from sqlalchemy import Connection, select

from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.db.tables import job_runs, meta
from stakehouse.jobs.schedule import Period, Schedule
from stakehouse.ledger.journal import dialect_insert

log = structlog.get_logger(__name__)

JobFn = Callable[[Connection, Period], str]


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Schedule
    run: JobFn
    #: Runs behind the exclusive ledger barrier (``Database.write``): for jobs that read the books
    #: as of the period's end, so that no write stamped before it commits after they looked.
    exclusive: bool = False


class EventSource(Protocol):
    """Work due at moments the data defines (a deposit's confirmations), not on a calendar.

    ``run_due`` does every item due by ``until`` in due-time order, each in its own transaction,
    exactly once however many processes call it (a conditional state change claims an item),
    stamping what it posts with the item's due time. The runner interleaves sources with the
    periodic jobs in time order (``JobRunner.run_due``, the sandbox's ``advance_to``)."""

    name: str

    def next_due(self) -> dt.datetime | None:
        """When the earliest pending item falls due, or ``None``."""
        ...

    def run_due(self, until: dt.datetime) -> int:
        """Do every item due by ``until``; the number done."""
        ...


@dataclass
class JobRegistry:
    jobs: list[Job] = field(default_factory=list)

    def add(self, job: Job) -> None:
        if any(j.name == job.name for j in self.jobs):
            raise ValueError(f"job {job.name} registered twice")
        self.jobs.append(job)


@dataclass(frozen=True)
class RunRecord:
    job: str
    period: str
    due_at: dt.datetime
    result: str


ORIGIN_KEY = "jobs_origin"


class JobRunner:
    def __init__(self, db: Database, clock: Clock, registry: JobRegistry) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry

    def origin(self) -> dt.datetime:
        """Periods that ended before the installation's first start are never due."""
        with self.db.read() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.key == ORIGIN_KEY)).scalar_one_or_none()
        if value is not None:
            return dt.datetime.fromisoformat(value)
        with self.db.write() as conn:
            conn.execute(
                dialect_insert(conn)(meta)
                .values(key=ORIGIN_KEY, value=self.clock.now().isoformat())
                .on_conflict_do_nothing(index_elements=["key"])
            )
            return dt.datetime.fromisoformat(
                conn.execute(select(meta.c.value).where(meta.c.key == ORIGIN_KEY)).scalar_one()
            )

    def due(self, until: dt.datetime) -> list[tuple[Period, int, Job]]:
        """Unprocessed (period, job) pairs due by ``until``, in time order then registry order."""
        origin = self.origin()
        with self.db.read() as conn:
            done = {(r.job, r.period) for r in conn.execute(select(job_runs.c.job, job_runs.c.period))}
        pending = [
            (period, index, job)
            for index, job in enumerate(self.registry.jobs)
            for period in job.schedule.ended_between(origin, until)
            if (job.name, period.key) not in done
        ]
        pending.sort(key=lambda item: (item[0].end, item[1]))
        return pending

    def run_one(self, job: Job, period: Period) -> RunRecord | None:
        """Run one period of a job unless some process already has. Returns what ran."""
        with self.db.write(exclusive=job.exclusive) as conn:
            claimed = conn.execute(
                dialect_insert(conn)(job_runs)
                .values(job=job.name, period=period.key, due_at=period.end, finished_at=self.clock.now(), result="")
                .on_conflict_do_nothing(index_elements=["job", "period"])
                .returning(job_runs.c.job)
            ).scalar_one_or_none()
            if claimed is None:
                return None
            result = job.run(conn, period)
            conn.execute(
                job_runs.update()
                .where(job_runs.c.job == job.name, job_runs.c.period == period.key)
                .values(result=result, finished_at=self.clock.now())
            )
        log.info("job_ran", job=job.name, period=period.key, result=result)
        return RunRecord(job.name, period.key, period.end, result)

    def run_due(self) -> list[RunRecord]:
        """Production and sandbox polling: run everything due by the clock's now."""
        ran = []
        for period, _, job in self.due(self.clock.now()):
            record = self.run_one(job, period)
            if record:
                ran.append(record)
        return ran

    def history(self, limit: int = 100) -> list[RunRecord]:
        with self.db.read() as conn:
            rows = conn.execute(select(job_runs).order_by(job_runs.c.due_at.desc()).limit(limit))
            return [RunRecord(r.job, r.period, r.due_at, r.result) for r in rows]
