"""Staking products: their *config* values and published rates (operator data, in the database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select

from stakehouse.db.dialect import dialect_insert, for_update
from stakehouse.db.tables import job_run_plans, staking_products, staking_rates, staking_reward_runs
from stakehouse.errors import InvalidParameter, NotAllowed, NotFound
from stakehouse.money import AmountError, parse_amount, round_down
from stakehouse.staking.rules import DEFAULT_PRODUCTS, RATE_SCALE, ProductConfig

#: The settings an operator may change (every field except the product's identity).
SETTINGS = tuple(f.name for f in dataclasses.fields(ProductConfig) if f.name not in ("product", "staked_ccy",
                                                                                        "token_ccy"))
_MONEY_SETTINGS = {"min_purchase", "total_quota", "user_quota", "min_redeem", "fast_redemption_daily_limit",
                   "daily_redemption_cap"}
_NULLABLE = {"total_quota", "user_quota", "daily_redemption_cap"}
_BOOL_SETTINGS = {"purchase_enabled", "fast_redemption_enabled", "redeem_cancellable", "sub_accounts_allowed"}
_INT_SETTINGS = {"precision": (0, 18), "unbonding_days": (0, 365), "min_kyc_level": (0, 3)}


def seed_products(conn: Connection, now: dt.datetime) -> None:
    """Insert the default products that are not there yet (never overwrites operator changes)."""
    for config in DEFAULT_PRODUCTS:
        conn.execute(dialect_insert(conn)(staking_products).values(**_row(config), updated_at=now)
                     .on_conflict_do_nothing())


def _row(config: ProductConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _config(row: Any) -> ProductConfig:
    return ProductConfig(**{f.name: getattr(row, f.name) for f in dataclasses.fields(ProductConfig)})


#: One product's settings (read by most staking calls; built once: "Prebuilt statements" in docs/architecture.md).
_PRODUCT = select(staking_products).where(staking_products.c.product == bindparam("product"))


def load_product(conn: Connection, product: str, *, lock: bool = False) -> ProductConfig:
    """A product's settings; ``lock`` holds its row until the transaction ends (PostgreSQL; a
    SQLite writer holds the whole database), so that a rate published for a day and that day's
    reward run cannot interleave."""
    row = conn.execute(for_update(conn, _PRODUCT) if lock else _PRODUCT, {"product": product}).first()
    if row is None:
        raise NotFound("Staking product", product[:16])
    return _config(row)


def load_products(conn: Connection) -> list[ProductConfig]:
    return [_config(r) for r in conn.execute(select(staking_products).order_by(staking_products.c.product))]


def coerce_setting(name: str, value: Any) -> Any:
    """An operator's new value for a setting, validated (``None`` = unlimited where allowed)."""
    if name not in SETTINGS:
        raise InvalidParameter("setting", f"unknown setting {name[:40]}")
    if isinstance(value, float):  # a JSON float has already lost exactness when it gets here
        raise InvalidParameter(name, 'give numbers as strings, e.g. "0.05"')
    if value is None or value == "":
        if name in _NULLABLE:
            return None
        raise InvalidParameter(name, "a value is required")
    if name in _BOOL_SETTINGS:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise InvalidParameter(name, "true or false")
    if name in _INT_SETTINGS:
        lo, hi = _INT_SETTINGS[name]
        text = str(value)  # ASCII digits only, and short: int() raises on "²" and on 5000 digits
        if isinstance(value, bool) or not (text.isascii() and text.isdigit() and len(text) <= 9) \
                or not lo <= int(text) <= hi:
            raise InvalidParameter(name, f"an integer {lo}..{hi}")
        return int(value)
    try:
        amount = parse_amount(str(value), scale=18, max_amount=Decimal(10) ** 15,
                              allow_zero=name in ("service_fee_rate", "fast_redemption_daily_limit",
                                                  "daily_redemption_cap", "total_quota", "user_quota"))
    except AmountError as exc:
        raise InvalidParameter(name, exc.reason) from None
    if name == "service_fee_rate" and amount > 1:
        raise InvalidParameter(name, "a fraction between 0 and 1")
    assert name in _MONEY_SETTINGS or name == "service_fee_rate"
    return amount


def update_product(conn: Connection, product: str, changes: dict[str, Any], now: dt.datetime) -> ProductConfig:
    current = load_product(conn, product)
    values = {name: coerce_setting(name, value) for name, value in changes.items()}
    if not values:
        return current
    updated = dataclasses.replace(current, **values)
    conn.execute(staking_products.update().where(staking_products.c.product == product)
                 .values(**values, updated_at=now))
    return updated


def reward_job(product: str) -> str:
    """The name of ``product``'s daily reward job."""
    return f"staking_rewards:{product}"


def publish_rate(conn: Connection, product: str, day: dt.date, rate: Decimal, now: dt.datetime) -> None:
    """Publish rate(D). A day whose reward run has happened is immutable."""
    load_product(conn, product, lock=True)
    if rate < 0 or rate > 10:
        raise InvalidParameter("rate", "an APY between 0 and 10 (0.0284 = 2.84 %)")
    if round_down(rate, RATE_SCALE) != rate:
        raise InvalidParameter("rate", f"at most {RATE_SCALE} decimals")
    # The run's plan fixes the day's rate (the product row, locked above, serialises the two).
    ran = conn.execute(select(job_run_plans.c.period).where(
        job_run_plans.c.job == reward_job(product), job_run_plans.c.period == day.isoformat())).first()
    ran = ran or conn.execute(select(staking_reward_runs.c.day).where(
        staking_reward_runs.c.product == product, staking_reward_runs.c.day == day.isoformat())).first()
    if ran is not None:
        raise NotAllowed(f"The {product} reward run for {day} has happened; its rate can no longer change")
    insert = dialect_insert(conn)(staking_rates).values(product=product, day=day.isoformat(), rate=rate,
                                                        published_at=now)
    conn.execute(insert.on_conflict_do_update(index_elements=["product", "day"],
                                              set_={"rate": rate, "published_at": now}))


def rate_on(conn: Connection, product: str, day: dt.date) -> Decimal | None:
    """rate(D): published for D, else the most recent earlier rate (rules 5.2)."""
    value: Decimal | None = conn.execute(
        select(staking_rates.c.rate)
        .where(staking_rates.c.product == product, staking_rates.c.day <= day.isoformat())
        .order_by(staking_rates.c.day.desc()).limit(1)
    ).scalar_one_or_none()
    return value


def rates_between(conn: Connection, product: str, first: dt.date, last: dt.date) -> dict[dt.date, Decimal]:
    """Published rates for ``first..last`` plus the one in force on ``first`` (for carry-forward)."""
    out: dict[dt.date, Decimal] = {}
    before = rate_on(conn, product, first)
    if before is not None:
        out[first] = before
    rows = conn.execute(select(staking_rates.c.day, staking_rates.c.rate).where(
        staking_rates.c.product == product, staking_rates.c.day > first.isoformat(),
        staking_rates.c.day <= last.isoformat()))
    for r in rows:
        out[dt.date.fromisoformat(r.day)] = r.rate
    return out
