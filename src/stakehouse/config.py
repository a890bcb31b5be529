"""Configuration: environment variables (``STAKEHOUSE_*``) over an optional TOML file.

Every setting is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SANDBOX_URL = "sqlite:///./data/stakehouse.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAKEHOUSE_", extra="forbid")

    #: SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``.
    database_url: str = DEFAULT_SANDBOX_URL
    #: Sandbox mode: controllable clock, demo users, generated admin token, faucet. A database
    #: remembers the mode it was created in; unset means "whatever the database says"
    #: (production for a new one), and a contradicting value is refused.
    sandbox: bool | None = None
    #: Fernet key (urlsafe base64, 32 bytes) that encrypts API secrets at rest. Required in
    #: production; the sandbox keeps a generated one next to its SQLite file.
    server_key: str = ""
    #: Bearer token for ``/admin``. Required in production; the sandbox generates one.
    admin_token: str = ""
    #: ``redis://host:port/db``: shared rate-limit counters for several workers.
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    #: Allowed |server time - OK-ACCESS-TIMESTAMP| in ms.
    auth_skew_ms: int = 30_000
    #: Peers whose ``X-Forwarded-For`` is believed (exact IPs or CIDRs).
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Business time zone of the T-day.
    business_tz: str = "Europe/Istanbul"
    #: When provider-staking (Gemini) accrual days end and their interest is paid, UTC ``HH:MM``.
    provider_accrual_time: str = Field("20:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    #: Multiplies every rate limit (1 = OKX's documented numbers).
    rate_limit_factor: float = 1.0
    #: Largest amount any request may carry.
    max_amount: Decimal = Decimal(10) ** 12
    #: Expire trade/withdraw keys without a bound IP after 14 days unused (live keys only).
    #: Unset: on in production, off in the sandbox (where a month may pass in a second).
    key_expiry_enabled: bool | None = None
    #: Base spot trading-fee rates (fractions) that ND brokers' fee changes apply to.
    spot_taker_fee_rate: Decimal = Decimal("0.001")
    spot_maker_fee_rate: Decimal = Decimal("0.0008")
    #: Production: an index price older than this many seconds refuses new orders on its instrument
    #: (the sandbox's walk is always current).
    max_price_age: int = Field(60, ge=1, le=86_400)
    #: New orders an ND broker's sub-account may place per 2 seconds (OKX's sub-account cap, 50061).
    nd_sub_order_cap: int = Field(1000, ge=1, le=1_000_000)
    #: Seconds an on-chain withdrawal waits for (simulated) review before it is broadcast.
    withdrawal_review_seconds: int = Field(60, ge=0, le=86_400)
    #: Largest accepted request body in bytes.
    max_body_bytes: int = 64 * 1024
    #: How often (seconds) ``serve --sandbox`` and ``worker`` look for due jobs.
    job_poll_seconds: float = 5.0
    #: Database connections one process uses at once for the chunks of a daily run (PostgreSQL;
    #: SQLite has one writer). About the database's cores; other workers may join in.
    job_connections: int = Field(2, ge=1, le=64)
    #: Connections each API worker opens when it starts, in each of its pools: the database's two
    #: pools (up to the 10 each keeps; PostgreSQL) and the Redis pool of the shared limits. Counts
    #: then start at their working level instead of climbing to the peak concurrency. 0: opened on
    #: first use (the sandbox, tests).
    pool_prefill: int = Field(0, ge=0, le=256)
    #: About how many users one chunk of a daily run covers (one transaction, one journal entry).
    job_chunk_size: int = Field(50_000, ge=1, le=10_000_000)
    #: A DCD quote can be executed for this many milliseconds.
    dcd_quote_ttl_ms: int = Field(30_000, ge=1_000, le=600_000)
    #: DCD products stop trading this many minutes before their expiry.
    dcd_stop_trading_minutes: int = Field(60, ge=0, le=1440)
    #: Where rebate detail files are written (every API worker and the job worker must see the same
    #: directory). Unset: ``rebate-files`` next to the sandbox's SQLite file, else ``./data/rebate-files``.
    files_dir: str = ""
    #: A requested rebate detail file is written this many seconds later (0: at the next job tick).
    rebate_file_delay_seconds: int = Field(0, ge=0, le=86_400)
    #: The base URL download links point at (``https://api.example.com``). Unset: the request's Host.
    public_url: str = ""
    log_level: str = "INFO"
    #: Log format: ``json`` (default) or ``console``.
    log_format: str = "json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("STAKEHOUSE_CONFIG")
        if path:
            if not Path(path).is_file():
                raise SystemExit(f"STAKEHOUSE_CONFIG names {path}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @property
    def key_expiry_active(self) -> bool:
        return self.key_expiry_enabled if self.key_expiry_enabled is not None else not self.sandbox

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def files_path(self) -> Path:
        if self.files_dir:
            return Path(self.files_dir)
        db = self.sqlite_path()
        return db.parent / "rebate-files" if db is not None else Path("data") / "rebate-files"

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        tail = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return Path(tail) if tail and tail != ":memory:" else None


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
