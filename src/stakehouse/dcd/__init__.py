"""Dual-currency deposits (DCD, "Dual Investment"): series the operator configures, the daily
listing at 08:00 UTC, indicative and firm quotes priced by Black-Scholes (``pricing_rules.py``),
orders of ND brokers' sub-accounts, and settlement at expiry through the platform's DCD book."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from stakehouse.accounts.service import AccountService
from stakehouse.container import Container
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.tables import dcd_series
from stakehouse.dcd.audit import CHECKS
from stakehouse.dcd.runs import DcdListing, DcdSettlement
from stakehouse.dcd.service import DcdService, default_series
from stakehouse.trading.prices import PriceService

#: The sandbox's series (production starts with none: the operator configures them).
SANDBOX_SERIES = (("BTC", "USDT"), ("ETH", "USDT"))


def seed_sandbox_series(conn: Connection, now: dt.datetime) -> None:
    for ccy, alt in SANDBOX_SERIES:
        row = default_series(ccy, alt)
        if ccy == "ETH":
            row.update(call_min=row["call_min"] * 10, call_step=row["call_step"] * 10, call_max=row["call_max"] * 10,
                       call_quota=row["call_quota"] * 10, strike_tick=row["strike_tick"] / 10)
        conn.execute(dialect_insert(conn)(dcd_series).values(**row, updated_at=now).on_conflict_do_nothing())


def install(c: Container) -> None:
    prices = c.get(PriceService)
    c.provide(DcdService(c.db, c.clock, c.settings, c.get(AccountService), prices, c.ledger))
    c.runner.add_source(DcdListing(c.db, c.clock, prices, dt.timedelta(minutes=c.settings.dcd_stop_trading_minutes)))
    c.runner.add_source(DcdSettlement(c.db, prices, c.ledger, c.settings.job_chunk_size))
    if c.settings.sandbox:
        c.seeds.append(seed_sandbox_series)
    c.checks.extend(CHECKS)
