"""Wiring: the database, the clock and the secret box, then every product installed in order.

``PRODUCTS`` is the one list of products; each installs itself (``install(container)``: its
services, jobs, event sources, audit checks and seeds). A product may build on the products
before it in the list. The properties of :class:`Services` are the names the adapters and the
operator's tools call the services by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from stakehouse import accounts, assets, broker, dcd, funding, oauth, rebates, trading
from stakehouse.accounts.gemini_keys import GeminiKeyService
from stakehouse.accounts.logins import LoginService
from stakehouse.accounts.service import AccountService
from stakehouse.assets.prices import UsdPrices
from stakehouse.assets.reference import ReferenceData
from stakehouse.assets.service import AssetService
from stakehouse.broker.service import BrokerService
from stakehouse.clock import Clock, ProductionClock, wall_time
from stakehouse.config import Settings
from stakehouse.container import Container
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.engine import Database
from stakehouse.db.migrate import upgrade
from stakehouse.db.tables import meta
from stakehouse.dcd.service import DcdService
from stakehouse.funding.deposits import ChainService
from stakehouse.funding.withdrawals import WithdrawalService
from stakehouse.jobs.schedule import Daily
from stakehouse.oauth.service import OAuthService
from stakehouse.rebates.fd import FdBrokerService
from stakehouse.rebates.files import RebateFileService
from stakehouse.rebates.service import RebateService
from stakehouse.sandbox.clock import SandboxClock
from stakehouse.security import SecretBox, new_server_key
from stakehouse.staking import liquid, provider
from stakehouse.staking.liquid.service import StakingService
from stakehouse.staking.provider.service import ProviderStakingService
from stakehouse.trading.credits import CreditService
from stakehouse.trading.prices import PriceService
from stakehouse.trading.service import TradingService

#: Every product, in install order (a product builds on those before it).
PRODUCTS = (accounts, assets, funding, broker, liquid, provider, trading, rebates, dcd, oauth)


class Services(Container):
    def __init__(self, settings: Settings, *, migrate: bool = True,
                 wall: Callable[[], dt.datetime] = wall_time) -> None:
        """``wall``: the host's clock that production time comes from (tests give a skewed one)."""
        db = Database(settings.database_url)
        if migrate:
            upgrade(db)
        sandbox, recorded = _resolve_mode(db, settings.sandbox)
        settings = settings.model_copy(update={"sandbox": sandbox})
        sandbox_clock: SandboxClock | None = None
        clock: Clock
        if settings.sandbox:
            sandbox_clock = SandboxClock(db)
            sandbox_clock.ensure()
            clock = sandbox_clock
        else:
            production = ProductionClock(wall)
            db.on_stamp_floor = production.raise_floor  # no write stamped inside a period already run
            clock = production
        super().__init__(settings, db, clock, sandbox_clock, SecretBox(resolve_server_key(settings)))
        for product in PRODUCTS:
            product.install(self)
        self.seed()
        self.runner.origin()
        if not recorded:
            self._record_mode()

    def _record_mode(self) -> None:
        """Remember the mode, once everything else has started (a failed start records nothing)."""
        with self.db.write() as conn:
            conn.execute(dialect_insert(conn)(meta).values(
                key="mode", value="sandbox" if self.settings.sandbox else "production").on_conflict_do_nothing())

    # -- the services by name ------------------------------------------------------------------

    @property
    def accounts(self) -> AccountService:
        return self.get(AccountService)

    @property
    def gemini_keys(self) -> GeminiKeyService:
        return self.get(GeminiKeyService)

    @property
    def logins(self) -> LoginService:
        return self.get(LoginService)

    @property
    def reference(self) -> ReferenceData:
        return self.get(ReferenceData)

    @property
    def usd(self) -> UsdPrices:
        """The one USD price book (markets' indexes, else the operator's prices)."""
        return self.get(UsdPrices)

    @property
    def assets(self) -> AssetService:
        return self.get(AssetService)

    @property
    def chain(self) -> ChainService:
        return self.get(ChainService)

    @property
    def withdrawals(self) -> WithdrawalService:
        return self.get(WithdrawalService)

    @property
    def broker(self) -> BrokerService:
        return self.get(BrokerService)

    @property
    def staking(self) -> StakingService:
        return self.get(StakingService)

    @property
    def provider_staking(self) -> ProviderStakingService:
        return self.get(ProviderStakingService)

    @property
    def prices(self) -> PriceService:
        return self.get(PriceService)

    @property
    def trading(self) -> TradingService:
        return self.get(TradingService)

    @property
    def credits(self) -> CreditService:
        return self.get(CreditService)

    @property
    def rebates(self) -> RebateService:
        return self.get(RebateService)

    @property
    def dcd(self) -> DcdService:
        return self.get(DcdService)

    @property
    def fd_brokers(self) -> FdBrokerService:
        return self.get(FdBrokerService)

    @property
    def rebate_files(self) -> RebateFileService:
        return self.get(RebateFileService)

    @property
    def oauth(self) -> OAuthService:
        return self.get(OAuthService)

    @property
    def calendar(self) -> Daily:
        """The business T-days of liquid staking."""
        return self.staking.calendar

    @property
    def accrual_calendar(self) -> Daily:
        """The accrual days of provider staking."""
        return self.provider_staking.calendar


def _resolve_mode(db: Database, wanted: bool | None) -> tuple[bool, bool]:
    """(sandbox?, already recorded?): the mode the database was first used in, else ``wanted``."""
    with db.read() as conn:
        mode = conn.execute(select(meta.c.value).where(meta.c.key == "mode")).scalar_one_or_none()
    if mode is None:
        return bool(wanted), False
    if wanted is not None and wanted != (mode == "sandbox"):
        raise SystemExit(f"this database was created in {mode} mode; "
                         f"refusing to open it in {'sandbox' if wanted else 'production'} mode")
    return mode == "sandbox", True


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
