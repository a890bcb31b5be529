"""Exactly-once execution of periodic jobs.

Each (job, period) runs in one database transaction that first claims the row
``job_runs(job, period)`` (primary key) and then does the work. A second worker, a restart
or a re-run finds the claim and skips; a crash rolls the claim back with the work, so the
period runs again later. Jobs stamp what they post with the period's due time, not with the
moment the runner happened to reach them.

A run that scales with users is **chunked** (``jobs/chunks.py``): planned, then done a chunk per
transaction on several connections at once (any process may join), and the ``job_runs`` row is
written when the last chunk is done. A crash loses at most the chunks in flight, which the next
run of the runner does again; none is paid twice.

Event sources (a deposit's confirmations, a withdrawal's review) are interleaved with the
periodic jobs in due-time order (:meth:`JobRunner.run_until`): an item due strictly before a
period's end is done before that period's jobs run; one due at the same moment or later, after.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import Connection, func, select

from stakehouse.clock import Clock
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import STAMP_FLOOR_KEY, Database, unavailable
from stakehouse.db.tables import job_run_chunks, job_run_plans, job_runs, meta
from stakehouse.jobs.chunks import Chunk, Chunked, Plan, add_totals, totals_from_json, totals_json
from stakehouse.jobs.schedule import Period, Schedule

log = structlog.get_logger(__name__)

JobFn = Callable[[Connection, Period], str]

CHUNKS_DONE = Counter("stakehouse_job_chunks_done_total", "Chunks of chunked runs done by this process", ["job"])
CHUNK_SECONDS = Histogram("stakehouse_job_chunk_seconds", "Time to do one chunk of a chunked run", ["job"])
CHUNK_RETRIES = Counter("stakehouse_job_chunk_retries_total",
                        "Chunks rolled back because the database could not go on (deadlock victim, dropped "
                        "connection) and done again", ["job"])
#: How often one chunk is tried when the database rolls it back for reasons of its own.
CHUNK_ATTEMPTS = 5


def raise_stamp_floor(conn: Connection, end: dt.datetime) -> None:
    """In the transaction of a run behind the exclusive barrier: no write may be stamped before
    ``end`` from now on (``clock.ProductionClock``; runs of several jobs reach the same ends in
    time order, so the floor only rises)."""
    current = conn.execute(select(meta.c.value).where(meta.c.key == STAMP_FLOOR_KEY)).scalar_one_or_none()
    if current is None:
        conn.execute(meta.insert().values(key=STAMP_FLOOR_KEY, value=end.isoformat()))
    elif dt.datetime.fromisoformat(current) < end:
        conn.execute(meta.update().where(meta.c.key == STAMP_FLOOR_KEY).values(value=end.isoformat()))


class ChunksPending(RuntimeError):
    """A chunked run could not finish: chunks are still not done (they keep failing)."""


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Schedule
    #: The whole run in one transaction, or a :class:`Chunked` run.
    run: JobFn | Chunked
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


@dataclass(frozen=True)
class RunProgress:
    """The run-level record of a chunked run: chunks planned and done, totals so far."""

    job: str
    period: str
    planned: int
    done: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    params: dict[str, str]
    totals: dict[str, Decimal]

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


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
                 sources: list[EventSource] | None = None, *, connections: int = 1, chunk_size: int = 50_000
                 ) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        #: Connections (threads) that work a chunked run's chunks at once (1 on SQLite: one writer).
        self.connections = 1 if db.is_sqlite else max(1, connections)
        #: About how many uids one chunk covers.
        self.chunk_size = max(1, chunk_size)
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
        if isinstance(job.run, Chunked):
            return self._run_chunked(job, job.run, period)
        with self.db.write(exclusive=job.exclusive) as conn:
            if not self._claim(conn, job, period, self.clock.now()):
                return None
            if job.exclusive:
                raise_stamp_floor(conn, period.end)
            result = job.run(conn, period)
            conn.execute(
                job_runs.update()
                .where(job_runs.c.job == job.name, job_runs.c.period == period.key)
                .values(result=result, finished_at=self.clock.now())
            )
        log.info("job_ran", job=job.name, period=period.key, result=result)
        return RunRecord(job.name, period.key, period.end, result)

    # -- chunked runs ------------------------------------------------------------------------

    def _run_chunked(self, job: Job, chunked: Chunked, period: Period) -> RunRecord | None:
        """Plan (or find the plan), do every chunk not done, then finish; see ``jobs/chunks.py``.
        A run of one chunk at most (a small installation, a day without a rate) is done whole in
        the plan's transaction, as an unchunked job is: the same records, a few transactions less."""
        with self.db.write(exclusive=job.exclusive) as conn:
            if self._ran(conn, job, period):
                return None
            at = self.clock.now()  # when the run starts (the sandbox clock is a read: once, not per record)
            plan = self._plan(conn, job, chunked, period, at)
            if plan is not None and job.exclusive:
                raise_stamp_floor(conn, period.end)
            if plan is not None and len(plan.chunks) <= 1:
                if not self._claim(conn, job, period, at):  # cannot happen: the plan's row is this run's
                    raise ChunksPending(f"{job.name} {period.key}: claimed by another process")
                totals = dict.fromkeys(chunked.totals, Decimal(0))
                for part in plan.chunks:
                    add_totals(totals, self._do_chunk(conn, job, chunked, period, plan.params, part, at))
                return self._finish(conn, job, chunked, period, plan.params, totals, self.clock.now())
        params = self._params(job, period)
        self._work_chunks(job, chunked, period, params)
        with self.db.write() as conn:
            at = self.clock.now()
            if not self._claim(conn, job, period, at):
                return None
            totals = dict.fromkeys(chunked.totals, Decimal(0))
            c = job_run_chunks.c
            for row in conn.execute(select(c.done_at, c.totals).where(c.job == job.name, c.period == period.key)):
                if row.done_at is None:  # a chunk failed after it was claimed: the next poll goes on
                    raise ChunksPending(f"{job.name} {period.key}: a chunk is not done")
                add_totals(totals, totals_from_json(row.totals))
            return self._finish(conn, job, chunked, period, params, totals, at)

    def _plan(self, conn: Connection, job: Job, chunked: Chunked, period: Period, at: dt.datetime) -> Plan | None:
        """Write the run's plan and chunks; ``None`` if another process has planned it."""
        planned = conn.execute(
            dialect_insert(conn)(job_run_plans)
            .values(job=job.name, period=period.key, planned=0, params="{}", started_at=at,
                    totals="{}")
            .on_conflict_do_nothing(index_elements=["job", "period"])
            .returning(job_run_plans.c.job)
        ).scalar_one_or_none()
        if planned is None:
            return None
        plan = chunked.plan(conn, period, self.chunk_size)
        if plan.chunks:
            conn.execute(job_run_chunks.insert(), [
                {"job": job.name, "period": period.key, "chunk": c.number, "lo": c.lo, "hi": c.hi, "totals": "{}"}
                for c in plan.chunks])
        conn.execute(job_run_plans.update().where(*self._plan_key(job, period))
                     .values(planned=len(plan.chunks), params=json.dumps(plan.params)))
        log.info("job_planned", job=job.name, period=period.key, chunks=len(plan.chunks))
        return plan

    def _finish(self, conn: Connection, job: Job, chunked: Chunked, period: Period, params: dict[str, str],
                totals: dict[str, Decimal], at: dt.datetime) -> RunRecord:
        """Record the run (the job's ``finish``, ``job_runs``, the plan) as finished ``at``, in
        ``conn``'s transaction, which has claimed the period."""
        result = chunked.finish(conn, period, params, totals)
        conn.execute(job_runs.update().where(job_runs.c.job == job.name, job_runs.c.period == period.key)
                     .values(result=result, finished_at=at))
        conn.execute(job_run_plans.update().where(*self._plan_key(job, period))
                     .values(finished_at=at, totals=totals_json(totals)))
        log.info("job_ran", job=job.name, period=period.key, result=result)
        return RunRecord(job.name, period.key, period.end, result)

    def _claim(self, conn: Connection, job: Job, period: Period, at: dt.datetime) -> bool:
        """Claim ``job_runs(job, period)`` in ``conn``'s transaction (``at``: now); False if a process has."""
        return conn.execute(
            dialect_insert(conn)(job_runs)
            .values(job=job.name, period=period.key, due_at=period.end, finished_at=at, result="")
            .on_conflict_do_nothing(index_elements=["job", "period"])
            .returning(job_runs.c.job)
        ).scalar_one_or_none() is not None

    @staticmethod
    def _plan_key(job: Job, period: Period) -> tuple[Any, Any]:
        return job_run_plans.c.job == job.name, job_run_plans.c.period == period.key

    @staticmethod
    def _ran(conn: Connection, job: Job, period: Period) -> bool:
        return conn.execute(select(job_runs.c.job).where(
            job_runs.c.job == job.name, job_runs.c.period == period.key)).first() is not None

    def _params(self, job: Job, period: Period) -> dict[str, str]:
        with self.db.read() as conn:
            text = conn.execute(select(job_run_plans.c.params).where(*self._plan_key(job, period))).scalar_one()
        params: dict[str, str] = json.loads(text)
        return params

    def _work_chunks(self, job: Job, chunked: Chunked, period: Period, params: dict[str, str]) -> None:
        """Do every chunk not done, on ``connections`` connections at once; then wait for the chunks
        other processes hold and do those whose holder gave up (its transaction rolled back)."""
        while True:
            if self.connections == 1:
                self._drain(job, chunked, period, params)
            else:
                with ThreadPoolExecutor(self.connections, thread_name_prefix="chunks") as pool:
                    for _ in pool.map(lambda _n: self._drain(job, chunked, period, params), range(self.connections)):
                        pass
            c = job_run_chunks.c
            with self.db.write() as conn:  # blocks on the chunks other processes are doing
                left = conn.execute(select(c.chunk).where(c.job == job.name, c.period == period.key,
                                                          c.done_at.is_(None)).with_for_update()).first()
            if left is None:
                return

    def _drain(self, job: Job, chunked: Chunked, period: Period, params: dict[str, str]) -> int:
        """Claim and do chunks until none is left to claim. The number done."""
        done = 0
        while True:
            for attempt in range(1, CHUNK_ATTEMPTS + 1):
                try:
                    number = self._one_chunk(job, chunked, period, params)
                    break
                except Exception as exc:
                    if not unavailable(exc) or attempt == CHUNK_ATTEMPTS:
                        raise
                    CHUNK_RETRIES.labels(job.name).inc()
                    log.warning("job_chunk_retry", job=job.name, period=period.key, error=type(exc).__name__)
                    self.db.forget_connections()
            if number is None:
                return done
            done += 1

    def _one_chunk(self, job: Job, chunked: Chunked, period: Period, params: dict[str, str]) -> int | None:
        c = job_run_chunks.c
        started = time.perf_counter()
        with self.db.write() as conn:
            row = conn.execute(select(c.chunk, c.lo, c.hi).where(
                c.job == job.name, c.period == period.key, c.done_at.is_(None),
            ).order_by(c.chunk).limit(1).with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            self._do_chunk(conn, job, chunked, period, params, Chunk(row.chunk, row.lo, row.hi), self.clock.now())
        CHUNK_SECONDS.labels(job.name).observe(time.perf_counter() - started)
        return int(row.chunk)

    def _do_chunk(self, conn: Connection, job: Job, chunked: Chunked, period: Period, params: dict[str, str],
                  part: Chunk, at: dt.datetime) -> dict[str, Decimal]:
        """One chunk, marked done ``at`` with its totals in ``conn``'s transaction (which has claimed it)."""
        totals = chunked.chunk(conn, period, params, part)
        c = job_run_chunks.c
        conn.execute(job_run_chunks.update().where(c.job == job.name, c.period == period.key, c.chunk == part.number)
                     .values(done_at=at, totals=totals_json(totals)))
        CHUNKS_DONE.labels(job.name).inc()
        log.info("job_chunk_done", job=job.name, period=period.key, chunk=part.number)
        return totals

    def runs(self, *, limit: int = 20, job: str | None = None, open_only: bool = False) -> list[RunProgress]:
        """Chunked runs, newest first (those in progress first), with chunks planned and done."""
        p, c = job_run_plans.c, job_run_chunks.c
        done = (select(func.count()).where(c.job == p.job, c.period == p.period, c.done_at.is_not(None))
                .scalar_subquery())
        query = select(job_run_plans, done.label("done"))
        if job is not None:
            query = query.where(p.job == job)
        if open_only:
            query = query.where(p.finished_at.is_(None))
        query = query.order_by(p.finished_at.is_not(None), p.started_at.desc(), p.job).limit(limit)
        with self.db.read() as conn:
            return [RunProgress(r.job, r.period, r.planned, int(r.done), r.started_at, r.finished_at,
                                json.loads(r.params), totals_from_json(r.totals) if r.finished_at else
                                self._totals_so_far(conn, r.job, r.period))
                    for r in conn.execute(query)]

    @staticmethod
    def _totals_so_far(conn: Connection, job: str, period: str) -> dict[str, Decimal]:
        c = job_run_chunks.c
        totals: dict[str, Decimal] = {}
        for text in conn.execute(select(c.totals).where(c.job == job, c.period == period,
                                                        c.done_at.is_not(None))).scalars():
            add_totals(totals, totals_from_json(text))
        return totals

    def run_due(self) -> list[RunRecord]:
        """Production and sandbox polling: run everything due by the clock's now (periodic jobs and
        event sources, interleaved in due-time order)."""
        return self.run_until(self.clock.now())

    def _dues(self, skip: set[str]) -> list[tuple[EventSource, dt.datetime]]:
        """Each source's earliest pending item (leaving out the sources in ``skip``), as read now."""
        dues = []
        for source in self.sources:
            if source.name not in skip and (due := source.next_due()) is not None:
                dues.append((source, due))
        return dues

    @staticmethod
    def _horizon(source: EventSource, due: dt.datetime, limit: dt.datetime,
                 dues: list[tuple[EventSource, dt.datetime]]) -> dt.datetime:
        """How far ``source`` may go in one call: its own due item, or, for a source that
        ``batches`` (the market's minute step), everything up to ``limit`` or the next item of
        another source (``dues``, read with ``due``), whichever is first (time order is kept; the
        calls are fewer)."""
        if not getattr(source, "batches", False):
            return due
        return max(min([limit, *(d for other, d in dues if other is not source)]), due)

    def _run_sources(self, limit: dt.datetime, step: StepFn | None, ran: list[RunRecord]) -> None:
        """Every source item due by ``limit``, earliest first across sources (registration order
        on ties)."""
        stuck: set[tuple[str, dt.datetime]] = set()
        skip: set[str] = set()
        while True:
            dues = self._dues(skip)
            due_now = [(source, due) for source, due in dues if due <= limit]
            if not due_now:
                return
            source, due = min(due_now, key=lambda item: item[1])  # the first of the earliest
            if step is not None:
                step(due)
            done = source.run_due(self._horizon(source, due, limit, dues))
            if done:
                ran.append(RunRecord(source.name, due.isoformat(), due, f"{done} done"))
                stuck.clear()
            elif (source.name, due) in stuck:
                # Nothing moved twice at the same due time: the source cannot do it now (a full
                # disk, a row it refuses); leave it for the next poll rather than spin, and go on
                # with the other sources (one stuck item must not hold back the rest).
                log.warning("event_source_stuck", source=source.name, due=due.isoformat())
                skip.add(source.name)
            else:
                stuck.add((source.name, due))

    def run_until(self, until: dt.datetime, step: StepFn | None = None, *,
                  progress: ProgressFn | None = None) -> list[RunRecord]:
        """Run every job period and event-source item due by ``until``, in due-time order: source
        items due strictly before a period's end first, then the jobs of every period that ends at
        that moment, in registry order (a job makes no source item due before its own period's end,
        so the sources are read once per moment, not once per job). ``step(due)`` is called before
        each piece of work (the sandbox moves its clock there).

        The span is worked through in windows of ``WINDOW`` (periods and claims are read one window
        at a time, so memory stays flat however long the span); ``progress(reached, runs)`` is
        called after each. Every period ended by ``until`` is done when this returns (a period
        another process holds is waited for by the claim), so the next call starts there."""
        ran: list[RunRecord] = []
        reached = self._done_until or self.origin()
        while reached < until:
            window_end = min(until, reached + WINDOW)
            at: dt.datetime | None = None
            for period, _, job in self.due(window_end, after=reached):
                if period.end != at:  # once for all the periods that end at this moment
                    self._run_sources(period.end - _TICK, step, ran)
                    if step is not None:
                        step(period.end)
                    at = period.end
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
