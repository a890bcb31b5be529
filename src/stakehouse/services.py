"""Wiring: one object holding the database, the clock and every service (use cases)."""

from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path

from sqlalchemy import select

from stakehouse.accounts.gemini_keys import GeminiKeyService
from stakehouse.accounts.service import AccountService
from stakehouse.assets.reference import ReferenceData, seed_reference_data
from stakehouse.assets.service import AssetService
from stakehouse.broker.service import BrokerService
from stakehouse.chain.service import ChainService
from stakehouse.chain.withdrawals import AUDIT_CHECKS as WITHDRAWAL_CHECKS
from stakehouse.chain.withdrawals import WithdrawalService
from stakehouse.clock import Clock, SystemClock
from stakehouse.config import Settings
from stakehouse.db.engine import Database, unavailable
from stakehouse.db.migrate import upgrade
from stakehouse.db.tables import meta
from stakehouse.errors import NotAllowed
from stakehouse.jobs.runner import Job, JobRegistry, JobRunner, ProgressFn, RunRecord
from stakehouse.jobs.schedule import Daily, Hourly
from stakehouse.ledger.audit import AuditReport, run_audit
from stakehouse.ledger.journal import Ledger, PostingView, dialect_insert, user_journal
from stakehouse.sandbox.clock import SandboxClock
from stakehouse.sandbox.control import advance_target, advance_to
from stakehouse.security import SecretBox, new_server_key
from stakehouse.staking import audit as staking_audit
from stakehouse.staking import provider_audit, provider_runs
from stakehouse.staking.products import seed_products
from stakehouse.staking.provider_service import ProviderStakingService
from stakehouse.staking.rules import DEFAULT_PRODUCTS
from stakehouse.staking.runs import reward_run, settlement_run
from stakehouse.staking.service import StakingService

MAINTENANCE_KEY = "maintenance"
MAINTENANCE_CACHE_SECONDS = 2.0


class Services:
    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self._maintenance: tuple[float, bool] = (0.0, False)
        self.db = Database(settings.database_url)
        if migrate:
            upgrade(self.db)
        sandbox, recorded = self._resolve_mode(settings.sandbox)
        settings = settings.model_copy(update={"sandbox": sandbox})
        self.settings = settings
        self.sandbox_clock: SandboxClock | None = None
        self.clock: Clock
        if settings.sandbox:
            self.sandbox_clock = SandboxClock(self.db)
            self.sandbox_clock.ensure()
            self.clock = self.sandbox_clock
        else:
            self.clock = SystemClock()
        self.box = SecretBox(resolve_server_key(settings))
        self.ledger = Ledger()
        self.reference = ReferenceData(self.db)
        self.accounts = AccountService(self.db, self.clock, self.box)
        self.assets = AssetService(self.db, self.clock, self.ledger, self.accounts)
        self.calendar = Daily(settings.business_tz)
        self.staking = StakingService(self.db, self.clock, self.ledger, self.accounts, self.calendar)
        self.gemini_keys = GeminiKeyService(self.db, self.clock, self.box, self.accounts)
        self.accrual_calendar = Daily("UTC", dt.time.fromisoformat(settings.provider_accrual_time))
        self.provider_staking = ProviderStakingService(self.db, self.clock, self.ledger, self.accounts,
                                                       self.accrual_calendar)
        self.broker = BrokerService(self.db, self.clock, self.ledger, self.accounts, settings)
        self.chain = ChainService(self.db, self.clock, self.ledger, self.accounts)
        self.withdrawals = WithdrawalService(self.db, self.clock, self.ledger, self.accounts, self.chain, settings)
        self.jobs = JobRegistry()
        self._register_staking_jobs()
        self.jobs.add(Job("provider_interest", self.accrual_calendar,
                          functools.partial(provider_runs.interest_run, ledger=self.ledger), exclusive=True))
        self.jobs.add(Job("provider_settlement", self.accrual_calendar,
                          functools.partial(provider_runs.settlement_run, ledger=self.ledger), exclusive=True))
        if settings.key_expiry_active:
            self.jobs.add(Job("api_key_expiry", Hourly(),
                              lambda conn, period: f"expired {self.accounts.expire_idle_keys(conn, period.end)}"))
        self.runner = JobRunner(self.db, self.clock, self.jobs)
        # event sources, interleaved with the jobs in due-time order: deposits, then withdrawals
        self.runner.add_source(self.chain)
        self.runner.add_source(self.withdrawals)
        with self.db.write() as conn:
            seed_reference_data(conn, self.clock.now())
            seed_products(conn, self.clock.now())
        self.runner.origin()
        if not recorded:
            self._record_mode()

    def _register_staking_jobs(self) -> None:
        """Per product, the reward run then the settlement run of each T-day (rewards first: the
        runner orders a period's jobs by registration)."""
        names = [cfg.product for cfg in DEFAULT_PRODUCTS]
        for product in names:
            self.jobs.add(Job(f"staking_rewards:{product}", self.calendar,
                              functools.partial(reward_run, ledger=self.ledger, product=product), exclusive=True))
        for product in names:
            self.jobs.add(Job(f"staking_settlement:{product}", self.calendar,
                              functools.partial(settlement_run, ledger=self.ledger, calendar=self.calendar,
                                                product=product), exclusive=True))

    def _resolve_mode(self, wanted: bool | None) -> tuple[bool, bool]:
        """(sandbox?, already recorded?): the mode the database was first used in, else ``wanted``."""
        with self.db.read() as conn:
            mode = conn.execute(select(meta.c.value).where(meta.c.key == "mode")).scalar_one_or_none()
        if mode is None:
            return bool(wanted), False
        if wanted is not None and wanted != (mode == "sandbox"):
            raise SystemExit(f"this database was created in {mode} mode; "
                             f"refusing to open it in {'sandbox' if wanted else 'production'} mode")
        return mode == "sandbox", True

    def _record_mode(self) -> None:
        """Remember the mode, once everything else has started (a failed start records nothing)."""
        with self.db.write() as conn:
            conn.execute(dialect_insert(conn)(meta).values(
                key="mode", value="sandbox" if self.settings.sandbox else "production").on_conflict_do_nothing())

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

    def user_journal(self, uid: str, *, limit: int = 100, before_entry: int | None = None) -> list[PostingView]:
        """A user's postings, newest first (raises NotFound for an unknown user)."""
        self.accounts.get(uid)
        with self.db.read() as conn:
            return user_journal(conn, uid, limit=min(max(limit, 1), 1000), before_entry=before_entry)

    def audit(self) -> AuditReport:
        with self.db.read() as conn:
            return run_audit(conn, (*staking_audit.CHECKS, *provider_audit.CHECKS, *WITHDRAWAL_CHECKS))

    def advance_clock(self, *, to: dt.datetime | None = None, by: dt.timedelta | None = None,
                      progress: ProgressFn | None = None) -> list[RunRecord]:
        """Move the sandbox clock ``to`` a moment or ``by`` a span (at most ``MAX_ADVANCE``), running
        everything that falls due on the way; ``by`` of zero runs what is due now."""
        if self.sandbox_clock is None:
            raise NotAllowed("The clock can only be moved in the sandbox")
        target = advance_target(self.sandbox_clock.now(), to=to, by=by)
        return advance_to(self.sandbox_clock, self.runner, target, progress=progress)

    def pin_clock(self, running: bool) -> dt.datetime:
        """Freeze the sandbox clock where it is (``running=False``: scripts see exact, repeatable
        times and only ``advance_clock`` moves it) or let it run with the wall clock again."""
        if self.sandbox_clock is None:
            raise NotAllowed("The clock can only be moved in the sandbox")
        return self.sandbox_clock.resume() if running else self.sandbox_clock.freeze()

    def clock_running(self) -> bool:
        """Whether business time moves with the wall clock (always in production)."""
        return self.sandbox_clock is None or self.sandbox_clock.is_running()

    def close(self) -> None:
        self.db.dispose()


def resolve_server_key(settings: Settings) -> str:
    """The configured server key; in the sandbox, one generated once and kept beside the database."""
    if settings.server_key:
        return settings.server_key
    if not settings.sandbox:
        raise SystemExit("STAKEHOUSE_SERVER_KEY is required outside the sandbox")
    path = settings.sqlite_path()
    key_file = (path.parent if path else Path("data")) / ".server.key"
    if key_file.exists():
        return key_file.read_text().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = new_server_key()
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key
