"""USD prices set by the operator (append-only): what a currency was worth at a moment.

Provider staking needs them for the monthly USD deposit limit and for the price shown with
each interest payment. There is no market feed: the operator (or the sandbox) sets them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, select

from stakehouse.db.tables import currencies, usd_prices
from stakehouse.errors import InvalidParameter, NotFound
from stakehouse.money import round_down


@dataclass(frozen=True)
class UsdPrice:
    ccy: str
    price: Decimal
    set_at: dt.datetime


def set_price(conn: Connection, ccy: str, price: Decimal, at: dt.datetime) -> UsdPrice:
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        raise InvalidParameter("price", "a positive decimal")
    if round_down(price, 18) != price or price >= Decimal(10) ** 20:
        raise InvalidParameter("price", "at most 18 decimals, below 10^20")
    if conn.execute(select(currencies.c.ccy).where(currencies.c.ccy == ccy)).first() is None:
        raise NotFound("Currency", ccy[:16])
    conn.execute(usd_prices.insert().values(ccy=ccy, set_at=at, price=price))
    return UsdPrice(ccy, price, at)


def price_at(conn: Connection, ccy: str, at: dt.datetime) -> Decimal | None:
    """The latest price set at or before ``at``; ``None`` if there is none."""
    found: Decimal | None = conn.execute(
        select(usd_prices.c.price).where(usd_prices.c.ccy == ccy, usd_prices.c.set_at <= at)
        .order_by(usd_prices.c.set_at.desc(), usd_prices.c.id.desc()).limit(1)).scalar_one_or_none()
    return found


def current_prices(conn: Connection, at: dt.datetime) -> list[UsdPrice]:
    """Every currency's price at ``at`` (as :func:`price_at` finds it; a few currencies)."""
    out = []
    for ccy in conn.execute(select(usd_prices.c.ccy).distinct().order_by(usd_prices.c.ccy)).scalars():
        row = conn.execute(select(usd_prices).where(usd_prices.c.ccy == ccy, usd_prices.c.set_at <= at)
                           .order_by(usd_prices.c.set_at.desc(), usd_prices.c.id.desc()).limit(1)).first()
        if row is not None:
            out.append(UsdPrice(row.ccy, row.price, row.set_at))
    return out
