"""USD prices: what a currency is worth in US dollars at a moment, from one source.

A currency with a spot market against USDT is worth its index price (USDT taken as one dollar; the
index is the spot market's, ``trading/prices.py``, plugged in with :meth:`UsdPrices.use_index`).
USD stablecoins are worth one dollar. Any other currency is worth what the operator last set for
it (append-only). So there is one price per currency: the operator who sets the USD price of a
currency with a market pins its index, and the spot market, the USD limits of provider staking,
the interest history and the ``eqUsd`` valuations all read the same number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy import Connection, select

from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.db.tables import currencies, usd_prices
from stakehouse.errors import InvalidParameter, NotFound
from stakehouse.money import round_down

#: Worth one US dollar by definition.
USD_PEGGED = ("USD", "USDT", "USDC")


@dataclass(frozen=True)
class UsdPrice:
    ccy: str
    price: Decimal
    set_at: dt.datetime


class IndexSource(Protocol):
    """The spot market's index, as the USD price book reads it (inside the caller's transaction)."""

    def usd_index(self, conn: Connection, ccy: str, at: dt.datetime, *, catch_up: bool = True) -> UsdPrice | None:
        """The ``{ccy}-USDT`` index at ``at`` (``None``: the currency has no such market);
        ``catch_up``: first compute the sandbox walk up to ``at`` (``conn`` must then be writable)."""
        ...

    def refresh_usd(self, ccys: list[str]) -> None:
        """Compute the sandbox walk of these currencies' markets up to now (its own transaction)."""
        ...

    def pin_usd_index(self, conn: Connection, ccy: str, price: Decimal, at: dt.datetime) -> bool:
        """Set the ``{ccy}-USDT`` index to ``price`` at ``at``; ``False`` if there is no such market."""
        ...

    def usd_markets(self, conn: Connection) -> list[str]:
        """The currencies with a ``-USDT`` market."""
        ...


def check_price(price: Decimal) -> None:
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        raise InvalidParameter("price", "a positive decimal")
    if round_down(price, 18) != price or price >= Decimal(10) ** 20:
        raise InvalidParameter("price", "at most 18 decimals, below 10^20")


class UsdPrices:
    """The one USD price book (see the module docstring)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._index: IndexSource | None = None

    def use_index(self, source: IndexSource) -> None:
        """The spot market plugs its index in when it is installed."""
        self._index = source

    def price_at(self, conn: Connection, ccy: str, at: dt.datetime) -> Decimal | None:
        """What one ``ccy`` was worth in USD at ``at``; ``None`` if nothing says."""
        found = self.quote_at(conn, ccy, at)
        return found.price if found else None

    def quote_at(self, conn: Connection, ccy: str, at: dt.datetime, *, catch_up: bool = True) -> UsdPrice | None:
        if ccy in USD_PEGGED:
            return UsdPrice(ccy, Decimal(1), at)
        if self._index is not None:
            indexed = self._index.usd_index(conn, ccy, at, catch_up=catch_up)
            if indexed is not None:
                return indexed
        row = conn.execute(
            select(usd_prices).where(usd_prices.c.ccy == ccy, usd_prices.c.set_at <= at)
            .order_by(usd_prices.c.set_at.desc(), usd_prices.c.id.desc()).limit(1)).first()
        return UsdPrice(row.ccy, row.price, row.set_at) if row else None

    def prices_now(self, ccys: list[str]) -> dict[str, Decimal]:
        """The USD prices now of those of ``ccys`` that have one (for valuations such as ``eqUsd``)."""
        if self._index is not None:
            self._index.refresh_usd(ccys)
        now = self.clock.now()
        with self.db.query() as conn:
            found = {ccy: self.quote_at(conn, ccy, now, catch_up=False) for ccy in ccys}
        return {ccy: q.price for ccy, q in found.items() if q is not None}

    def set_price(self, conn: Connection, ccy: str, price: Decimal, at: dt.datetime) -> UsdPrice:
        """The operator's USD price of ``ccy``: a pin of its USDT market's index when it has one,
        else a new row of the operator's own prices. A USD stablecoin's price is fixed at 1."""
        check_price(price)
        if conn.execute(select(currencies.c.ccy).where(currencies.c.ccy == ccy)).first() is None:
            raise NotFound("Currency", ccy[:16])
        if ccy in USD_PEGGED:
            if price != 1:
                raise InvalidParameter("price", f"{ccy} is worth 1 USD by definition")
            return UsdPrice(ccy, Decimal(1), at)
        if self._index is not None and self._index.pin_usd_index(conn, ccy, price, at):
            return UsdPrice(ccy, price, at)
        conn.execute(usd_prices.insert().values(ccy=ccy, set_at=at, price=price))
        return UsdPrice(ccy, price, at)

    def current(self, conn: Connection, at: dt.datetime) -> list[UsdPrice]:
        """Every currency's USD price at ``at`` that has one, by currency: the markets' indexes and
        the operator's prices of the others (stablecoins, worth 1 by definition, are left out)."""
        ccys = set(conn.execute(select(usd_prices.c.ccy).distinct()).scalars())
        if self._index is not None:
            ccys |= set(self._index.usd_markets(conn))
        out = []
        for ccy in sorted(ccys - set(USD_PEGGED)):
            found = self.quote_at(conn, ccy, at)
            if found is not None:
                out.append(found)
        return out
