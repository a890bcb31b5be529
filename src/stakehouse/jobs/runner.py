"""Exactly-once execution of periodic jobs.

Each (job, period) runs in one database transaction that first claims the row
``job_runs(job, period)`` (primary key) and then does the work. A second worker, a restart
or a re-run finds the claim and skips; a crash rolls the claim back with the work, so the
period runs again later. Jobs stamp what they post with the period's due time, not with the
moment the runner happened to reach them.

Event sources (a deposit's confirmations, a withdrawal's review) are interleaved with the
periodic jobs in due-time order (:meth:`JobRunner.run_until`): an item due strictly before a
period's end is done before that period's jobs run; one due at the same moment or later, after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from sqlalchemy import Connection, select

from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.tables import job_runs, meta
from stakehouse.jobs.schedule import Period, Schedule

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


#: The instant before a moment: items due strictly before a period's end run before its jobs.
_TICK = dt.timedelta(microseconds=1)
#: ``run_until`` calls this with each due time before doing the work due then (the sandbox sets its
#: clock there; polling does nothing).
StepFn = Callable[[dt.datetime], None]
#: ``run_until`` calls this after each window with the moment reached and the runs so far.
ProgressFn = Callable[[dt.datetime, int], None]
#: How much of a long span ``run_until`` reads and runs at a time.
WINDOW = dt.timedelta(days=1)


class JobRunner:
    def __init__(self, db: Database, clock: Clock, registry: JobRegistry,
                 sources: list[EventSource] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.sources: list[EventSource] = list(sources or [])
        #: Every job period ended by this moment is done (set by ``run_until``; None: not known yet).
        self._done_until: dt.datetime | None = None
        self._origin: dt.datetime | None = None

    def add_source(self, source: EventSource) -> None:
        if any(s.name == source.name for s in self.sources):
            raise ValueError(f"event source {source.name} registered twice")
        self.sources.append(source)

    def origin(self) -> dt.datetime:
        """Periods that ended before the installation's first start are never due."""
        if self._origin is not None:
            return self._origin
        self._origin = self._read_origin()
        return self._origin

    def _read_origin(self) -> dt.datetime:
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

    def due(self, until: dt.datetime, *, after: dt.datetime | None = None) -> list[tuple[Period, int, Job]]:
        """Unprocessed (period, job) pairs due by ``until`` (and after ``after``: a window, so that
        what is read stays small however long the span), in time order then registry order."""
        start = self.origin() if after is None else max(after, self.origin())
        with self.db.read() as conn:
            done = {(r.job, r.period) for r in conn.execute(
                select(job_runs.c.job, job_runs.c.period).where(job_runs.c.due_at > start, job_runs.c.due_at <= until))}
        pending = [
            (period, index, job)
            for index, job in enumerate(self.registry.jobs)
            for period in job.schedule.ended_between(start, until)
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
        """Production and sandbox polling: run everything due by the clock's now (periodic jobs and
        event sources, interleaved in due-time order)."""
        return self.run_until(self.clock.now())

    def _earliest_source(self, limit: dt.datetime) -> tuple[EventSource, dt.datetime] | None:
        """The source with the earliest item due by ``limit`` (registration order on ties)."""
        best: tuple[EventSource, dt.datetime] | None = None
        for source in self.sources:
            due = source.next_due()
            if due is not None and due <= limit and (best is None or due < best[1]):
                best = (source, due)
        return best

    def _horizon(self, source: EventSource, due: dt.datetime, limit: dt.datetime) -> dt.datetime:
        """How far ``source`` may go in one call: its own due item, or, for a source that
        ``batches`` (the market's minute step), everything up to ``limit`` or the next item of
        another source, whichever is first (time order is kept; the calls are fewer)."""
        if not getattr(source, "batches", False):
            return due
        horizon = limit
        for other in self.sources:
            if other is not source:
                other_due = other.next_due()
                if other_due is not None and other_due < horizon:
                    horizon = other_due
        return max(horizon, due)

    def _run_sources(self, limit: dt.datetime, step: StepFn | None, ran: list[RunRecord]) -> None:
        """Every source item due by ``limit``, earliest first across sources."""
        stuck: set[tuple[str, dt.datetime]] = set()
        while (found := self._earliest_source(limit)) is not None:
            source, due = found
            if step is not None:
                step(due)
            done = source.run_due(self._horizon(source, due, limit))
            if done:
                ran.append(RunRecord(source.name, due.isoformat(), due, f"{done} done"))
                stuck.clear()
            elif (source.name, due) in stuck:
                # Nothing moved twice at the same due time: the source cannot do it (a bug or a
                # row it refuses); leave it for the next poll rather than spin.
                log.warning("event_source_stuck", source=source.name, due=due.isoformat())
                return
            else:
                stuck.add((source.name, due))

    def run_until(self, until: dt.datetime, step: StepFn | None = None, *,
                  progress: ProgressFn | None = None) -> list[RunRecord]:
        """Run every job period and event-source item due by ``until``, in due-time order: source
        items due strictly before a period's end first, then that period's jobs. ``step(due)`` is
        called before each piece of work (the sandbox moves its clock there).

        The span is worked through in windows of ``WINDOW`` (periods and claims are read one window
        at a time, so memory stays flat however long the span); ``progress(reached, runs)`` is
        called after each. Every period ended by ``until`` is done when this returns (a period
        another process holds is waited for by the claim), so the next call starts there."""
        ran: list[RunRecord] = []
        reached = self._done_until or self.origin()
        while reached < until:
            window_end = min(until, reached + WINDOW)
            for period, _, job in self.due(window_end, after=reached):
                self._run_sources(period.end - _TICK, step, ran)
                if step is not None:
                    step(period.end)
                record = self.run_one(job, period)
                if record:
                    ran.append(record)
            self._run_sources(window_end, step, ran)
            reached = self._done_until = window_end
            if progress is not None:
                progress(reached, len(ran))
        self._run_sources(until, step, ran)
        return ran

    def history(self, limit: int = 100) -> list[RunRecord]:
        with self.db.read() as conn:
            rows = conn.execute(select(job_runs).order_by(job_runs.c.due_at.desc()).limit(limit))
            return [RunRecord(r.job, r.period, r.due_at, r.result) for r in rows]
