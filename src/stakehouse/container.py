"""The platform every product installs itself into.

A :class:`Container` holds what products share: the settings, the database, the clock, the
ledger, the job registry and runner, the audit checks and the seeds of a first start. Each
product's ``install(container)`` builds its services (``provide``), finds the services it builds
on (``get``), and registers its jobs, event sources, audit checks and seeds. ``wiring.py`` builds
the container and lists the products; products never import the wiring or an adapter.

The container also carries the platform's own operations: the audit, maintenance mode and the
sandbox clock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, select

from stakehouse.clock import Clock
from stakehouse.config import Settings
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database, unavailable
from stakehouse.db.tables import meta
from stakehouse.errors import NotAllowed
from stakehouse.jobs import audit as jobs_audit
from stakehouse.jobs.runner import JobRegistry, JobRunner, ProgressFn, RunRecord
from stakehouse.ledger.audit import AuditCheck, AuditReport, CheckResult, run_audit
from stakehouse.ledger.journal import Ledger
from stakehouse.sandbox.clock import SandboxClock
from stakehouse.sandbox.control import advance_target, advance_to
from stakehouse.security import SecretBox

T = TypeVar("T")
#: Inserts a product's default rows that are not there yet (run in one transaction at every start).
Seed = Callable[[Connection, dt.datetime], None]

MAINTENANCE_KEY = "maintenance"
MAINTENANCE_CACHE_SECONDS = 2.0


def _chunked_runs(conn: Connection) -> list[CheckResult]:
    found = jobs_audit.chunked_runs(conn)
    return [CheckResult(found.name, found.checked, found.violations)]


class Container:
    def __init__(self, settings: Settings, db: Database, clock: Clock, sandbox_clock: SandboxClock | None,
                 box: SecretBox) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        #: The sandbox's movable clock (the same object as ``clock``), ``None`` in production.
        self.sandbox_clock = sandbox_clock
        self.box = box
        self.ledger = Ledger()
        self.jobs = JobRegistry()
        self.runner = JobRunner(db, clock, self.jobs, connections=settings.job_connections,
                                chunk_size=settings.job_chunk_size)
        self.checks: list[AuditCheck] = [_chunked_runs]
        self.seeds: list[Seed] = []
        self._services: dict[type, object] = {}
        self._maintenance: tuple[float, bool] = (0.0, False)

    # -- services ---------------------------------------------------------------------------

    def provide(self, service: T) -> T:
        """Make ``service`` the one of its class (products ``get`` it by that class)."""
        kind = type(service)
        if kind in self._services:
            raise ValueError(f"{kind.__name__} provided twice")
        self._services[kind] = service
        return service

    def get(self, kind: type[T]) -> T:
        """The service of class ``kind`` a product installed before this one provided."""
        service = self._services.get(kind)
        if service is None:
            raise LookupError(f"no {kind.__name__}: install the product that provides it first")
        assert isinstance(service, kind)
        return service

    def seed(self) -> None:
        """Every product's default rows, in one transaction."""
        with self.db.write() as conn:
            now = self.clock.now()
            for seed in self.seeds:
                seed(conn, now)

    # -- the audit ------------------------------------------------------------------------------

    def audit(self) -> AuditReport:
        """The ledger's invariants and every product's, on one snapshot of the database (consistent
        while writes go on)."""
        with self.db.snapshot() as conn:
            return run_audit(conn, self.checks)

    # -- maintenance mode -------------------------------------------------------------------

    def set_maintenance(self, on: bool) -> bool:
        """Turn maintenance mode on or off for every worker (kept in the database; the API
        adapters answer 503 while it is on; the admin API and the jobs go on)."""
        with self.db.write() as conn:
            stmt = dialect_insert(conn)(meta).values(key=MAINTENANCE_KEY, value="on" if on else "off")
            conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": "on" if on else "off"}))
        self._maintenance = (time.monotonic() + MAINTENANCE_CACHE_SECONDS, on)
        return on

    def in_maintenance(self) -> bool:
        """Whether maintenance mode is on; read from the database at most every
        ``MAINTENANCE_CACHE_SECONDS`` per process, so other workers follow within that time."""
        until, on = self._maintenance
        if time.monotonic() < until:
            return on
        try:
            with self.db.query() as conn:
                value = conn.execute(select(meta.c.value).where(meta.c.key == MAINTENANCE_KEY)).scalar_one_or_none()
            on = value == "on"
        except Exception as exc:  # the database could not answer: keep the last known state
            if not unavailable(exc):
                raise
        self._maintenance = (time.monotonic() + MAINTENANCE_CACHE_SECONDS, on)
        return on

    # -- the sandbox clock ----------------------------------------------------------------------

    def _movable_clock(self) -> SandboxClock:
        if self.sandbox_clock is None:
            raise NotAllowed("The clock can only be moved in the sandbox")
        return self.sandbox_clock

    def advance_clock(self, *, to: dt.datetime | None = None, by: dt.timedelta | None = None,
                      progress: ProgressFn | None = None) -> list[RunRecord]:
        """Move the sandbox clock ``to`` a moment or ``by`` a span (at most ``MAX_ADVANCE``), running
        everything that falls due on the way; ``by`` of zero runs what is due now."""
        clock = self._movable_clock()
        target = advance_target(clock.now(), to=to, by=by)
        return advance_to(clock, self.runner, target, progress=progress)

    def pin_clock(self, running: bool) -> dt.datetime:
        """Freeze the sandbox clock where it is (``running=False``: scripts see exact, repeatable
        times and only ``advance_clock`` moves it) or let it run with the wall clock again."""
        clock = self._movable_clock()
        return clock.resume() if running else clock.freeze()

    def clock_running(self) -> bool:
        """Whether business time moves with the wall clock (always in production)."""
        return self.sandbox_clock is None or self.sandbox_clock.is_running()

    def close(self) -> None:
        self.db.dispose()
