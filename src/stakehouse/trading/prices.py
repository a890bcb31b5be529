"""Index prices: the one price per instrument that fills, valuations and settlements read.

Prices are stored as one-minute candles (``index_candles``). In production a candle holds the
prices pushed in its minute. In the sandbox each minute's close is one step of the seeded walk
(``market_rules.walk``) from the minute before; a pin at any moment updates the open minute's
candle, and the walk continues from it.

The walk is computed when it is needed, not as the clock moves: ``price_paths.priced_until`` says
how far an instrument's candles go, and reading a price, pinning one, placing an order or filling
resting orders first prices the minutes up to that moment. The walk is a function of the seed and
the minute (and the pins), so the path is the same whenever it is computed; a month's advance
without trading costs nothing, and only the instruments someone reads or trades are walked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select

from stakehouse.assets.prices import UsdPrice
from stakehouse.assets.rules import Instrument
from stakehouse.clock import Clock, from_ms, to_ms
from stakehouse.config import Settings
from stakehouse.db.dialect import dialect_insert, driver_params, driver_sql, for_update
from stakehouse.db.engine import Database
from stakehouse.db.tables import currencies, index_candles, instruments, price_paths
from stakehouse.errors import InvalidParameter, MissingParameter, NotFound, Refused
from stakehouse.money import ZERO, round_down
from stakehouse.trading.market_rules import BARS, Candle, aggregate, bar_start, synthetic_book, walk
from stakehouse.trading.rules import TradingReason

MINUTE_MS = 60_000


@dataclass(frozen=True)
class PricePath:
    inst_id: str
    start_px: Decimal
    vol: Decimal
    drift: Decimal
    seed: str
    walk: bool
    priced_until: dt.datetime
    spread_bp: Decimal
    book_levels: int
    level_sz: Decimal
    updated_at: dt.datetime


@dataclass(frozen=True)
class IndexPrice:
    inst_id: str
    px: Decimal
    at: dt.datetime  # when it was set


#: (start price, annual volatility) the sandbox's instruments walk from.
DEFAULT_PATHS: dict[str, tuple[Decimal, Decimal]] = {
    "BTC-USDT": (Decimal("60000"), Decimal("0.6")),
    "ETH-USDT": (Decimal("3000"), Decimal("0.7")),
    "SOL-USDT": (Decimal("150"), Decimal("0.9")),
    "ETH-BTC": (Decimal("0.05"), Decimal("0.4")),
}


def minute_of(at: dt.datetime) -> int:
    """The start (Unix ms) of the minute containing ``at``."""
    ms = to_ms(at)
    return ms - ms % MINUTE_MS


def _path(r: object) -> PricePath:
    return PricePath(**{f: getattr(r, f) for f in PricePath.__dataclass_fields__})


def seed_paths(conn: Connection, now: dt.datetime, *, sandbox: bool) -> None:
    """Every listed instrument gets a path (the walk is on; production never walks); in the
    sandbox its first price too (production has none until the operator pushes one)."""
    insert = dialect_insert(conn)
    for inst_id in conn.execute(select(instruments.c.inst_id)).scalars():
        start, vol = DEFAULT_PATHS.get(inst_id, (Decimal(1), Decimal("0.5")))
        conn.execute(insert(price_paths).values(
            inst_id=inst_id, start_px=start, vol=vol, drift=ZERO, seed=f"stakehouse:{inst_id}", walk=True,
            priced_until=from_ms(minute_of(now)), spread_bp=Decimal(2), book_levels=5,
            level_sz=Decimal(1) if start < 1000 else Decimal("0.1"), updated_at=now).on_conflict_do_nothing())
        if sandbox and PriceService.latest_in(conn, inst_id) is None:
            path = conn.execute(select(price_paths.c.start_px).where(price_paths.c.inst_id == inst_id)).scalar_one()
            put_point(conn, inst_id, path, now)


#: How far an instrument's path is priced, read before every index read (built once: "Prebuilt
#: statements" in docs/architecture.md).
_PRICED_UNTIL = select(price_paths.c.priced_until).where(price_paths.c.inst_id == bindparam("inst_id"))


class PriceService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.walking = bool(settings.sandbox)

    # -- pricing the minutes -------------------------------------------------------------------

    def price_until(self, conn: Connection, inst_id: str, until: dt.datetime) -> None:
        """Give ``inst_id`` its candles for every minute that ended by ``until`` (in ``conn``'s write
        transaction; the path's row lock makes concurrent callers take turns). Production has nothing
        to compute: its candles are what was pushed."""
        if not self.walking:
            return
        end = minute_of(until)
        behind = conn.execute(_PRICED_UNTIL, {"inst_id": inst_id}).scalar_one_or_none()
        if behind is None or to_ms(behind) >= end:
            return
        mine = price_paths.c.inst_id == inst_id
        conn.execute(for_update(conn, select(price_paths.c.inst_id).where(mine))).one()  # callers take turns
        path = conn.execute(select(price_paths, instruments.c.tick_sz)
                            .join(instruments, instruments.c.inst_id == price_paths.c.inst_id).where(mine)).one()
        start = to_ms(path.priced_until)
        if start >= end:
            return  # another transaction priced them while this one waited
        if path.walk:
            walk_minutes(conn, path, start, end)
        conn.execute(price_paths.update().where(price_paths.c.inst_id == inst_id)
                     .values(priced_until=from_ms(end)))

    def _priced(self, inst_ids: list[str]) -> None:
        """Sandbox readers: price the minutes up to now of the instruments about to be read (a write
        transaction only when one is behind)."""
        if not self.walking:
            return
        now = self.clock.now()
        with self.db.query() as conn:
            behind = [r.inst_id for r in conn.execute(select(price_paths.c.inst_id, price_paths.c.priced_until)
                                                      .where(price_paths.c.inst_id.in_(inst_ids)))
                      if to_ms(r.priced_until) < minute_of(now)]
        if behind:
            with self.db.write() as conn:
                for inst_id in behind:
                    self.price_until(conn, inst_id, now)

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    def latest_in(conn: Connection, inst_id: str, at: dt.datetime | None = None) -> IndexPrice | None:
        """The newest index price stored (of a candle that began by ``at``, when given)."""
        q = select(index_candles.c.c, index_candles.c.last_at).where(index_candles.c.inst_id == inst_id)
        if at is not None:
            q = q.where(index_candles.c.ts <= to_ms(at))
        row = conn.execute(q.order_by(index_candles.c.ts.desc()).limit(1)).first()
        return IndexPrice(inst_id, row.c, row.last_at) if row else None

    def for_order(self, conn: Connection, inst_id: str) -> Decimal:
        """The index an order fills or is judged at (in the order's transaction): refused when there
        is none or, in production, when it is older than ``max_price_age``."""
        now = self.clock.now()
        self.price_until(conn, inst_id, now)
        found = self.latest_in(conn, inst_id)
        if found is None:
            raise Refused(TradingReason.NO_PRICE, f"No index price for {inst_id} yet", instId=inst_id)
        if not self.settings.sandbox:
            age = (now - found.at).total_seconds()
            if age > self.settings.max_price_age:
                raise Refused(TradingReason.STALE_PRICE,
                              f"The index price of {inst_id} is stale ({int(age)} s old); orders are paused",
                              instId=inst_id)
        return found.px

    def latest(self, inst_ids: list[str]) -> dict[str, IndexPrice]:
        self._priced(inst_ids)
        with self.db.query() as conn:
            out = {}
            for inst_id in inst_ids:
                found = self.latest_in(conn, inst_id)
                if found is not None:
                    out[inst_id] = found
            return out

    def day_stats(self, inst_id: str) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        """(open 24 h ago, high, low, open at 00:00 UTC) over the last 24 hours of minutes."""
        self._priced([inst_id])
        now = to_ms(self.clock.now())
        with self.db.query() as conn:
            rows = conn.execute(select(index_candles.c.ts, index_candles.c.o, index_candles.c.h, index_candles.c.l)
                                .where(index_candles.c.inst_id == inst_id, index_candles.c.ts > now - 86_400_000)
                                .order_by(index_candles.c.ts)).all()
        if not rows:
            return None
        midnight = now - now % 86_400_000
        sod = next((r.o for r in rows if r.ts >= midnight), rows[-1].o)
        return rows[0].o, max(r.h for r in rows), min(r.l for r in rows), sod

    def candles(self, inst_id: str, bar: str, *, after: int | None, before: int | None, limit: int) -> list[Candle]:
        """Newest-first bars of ``bar`` length: with ``after`` strictly older than it, with
        ``before`` strictly newer (OKX's cursors on the bar's start)."""
        length = _bar_length(bar)
        self._priced([inst_id])
        with self.db.query() as conn:
            q = select(index_candles).where(index_candles.c.inst_id == inst_id)
            if after is not None:
                q = q.where(index_candles.c.ts < bar_start(after, bar))
            if before is not None:
                q = q.where(index_candles.c.ts >= bar_start(before, bar) + length)
            # enough minutes for ``limit`` bars (bounded: a week's bars of 300 weeks is 3 million minutes)
            span = min(limit * (length // MINUTE_MS), 500_000)
            rows = conn.execute(q.order_by(index_candles.c.ts.asc() if before is not None and after is None
                                           else index_candles.c.ts.desc()).limit(span)).all()
        minutes = sorted((Candle(r.ts, r.o, r.h, r.l, r.c) for r in rows), key=lambda c: c.ts)
        bars = aggregate(minutes, bar)
        bars = bars[:limit] if before is not None and after is None else bars[-limit:]
        return list(reversed(bars))

    def book(self, inst_id: str, depth: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]],
                                                      dt.datetime]:
        found = self.latest([inst_id]).get(inst_id)
        with self.db.query() as conn:
            path = conn.execute(select(price_paths).where(price_paths.c.inst_id == inst_id)).first()
            inst = conn.execute(select(instruments).where(instruments.c.inst_id == inst_id)).first()
        if inst is None:
            raise NotFound("Instrument", inst_id)
        if found is None or path is None:
            return [], [], self.clock.now()
        level_sz = max(path.level_sz, inst.lot_sz)
        asks, bids = synthetic_book(found.px, tick=inst.tick_sz, lot=inst.lot_sz, spread_bp=path.spread_bp,
                                    levels=max(1, min(depth, path.book_levels)), level_sz=level_sz)
        return asks, bids, found.at

    # -- the USD price book's index (``assets.prices.IndexSource``) --------------------------------

    def usd_index(self, conn: Connection, ccy: str, at: dt.datetime, *, catch_up: bool = True) -> UsdPrice | None:
        inst_id = f"{ccy}-USDT"
        if conn.execute(select(price_paths.c.inst_id).where(price_paths.c.inst_id == inst_id)).first() is None:
            return None
        if catch_up:
            self.price_until(conn, inst_id, at)
        found = self.latest_in(conn, inst_id, at)
        return UsdPrice(ccy, found.px, found.at) if found else None

    def refresh_usd(self, ccys: list[str]) -> None:
        self._priced([f"{ccy}-USDT" for ccy in ccys])

    def pin_usd_index(self, conn: Connection, ccy: str, price: Decimal, at: dt.datetime) -> bool:
        inst_id = f"{ccy}-USDT"
        if conn.execute(select(price_paths.c.inst_id).where(price_paths.c.inst_id == inst_id)).first() is None:
            return False
        self.price_until(conn, inst_id, at)
        put_point(conn, inst_id, price, at)
        return True

    def usd_markets(self, conn: Connection) -> list[str]:
        return [inst_id[:-5] for inst_id in conn.execute(select(price_paths.c.inst_id)).scalars()
                if inst_id.endswith("-USDT")]

    # -- the operator --------------------------------------------------------------------------

    def paths(self) -> list[PricePath]:
        with self.db.query() as conn:
            return [_path(r) for r in conn.execute(select(price_paths).order_by(price_paths.c.inst_id))]

    def set_path(self, inst_id: str, **values: object) -> PricePath:
        """Change an instrument's walk or book settings (validated by the caller). The minutes up to
        now are priced first: a new volatility applies from now on, not to the past."""
        with self.db.write() as conn:
            if conn.execute(select(price_paths.c.inst_id).where(price_paths.c.inst_id == inst_id)).first() is None:
                raise NotFound("Instrument", inst_id)
            now = self.clock.now()
            self.price_until(conn, inst_id, now)
            if values:
                conn.execute(price_paths.update().where(price_paths.c.inst_id == inst_id)
                             .values(**values, updated_at=now))
            return _path(conn.execute(select(price_paths).where(price_paths.c.inst_id == inst_id)).one())

    def set_instrument(self, inst_id: str, values: dict[str, Any]) -> tuple[Instrument, PricePath]:
        """List a new spot instrument (``base_ccy``, ``quote_ccy``, sizes, and ``start_px``, its first
        index price) or change one (sizes, ``state`` ``live``/``suspend``). Values are validated by
        the caller (``operator/trading.py``); a new instrument gets a price path with the defaults."""
        with self.db.write() as conn:
            now = self.clock.now()
            found = conn.execute(select(instruments).where(instruments.c.inst_id == inst_id)).first()
            start_px = values.pop("start_px", None)
            if found is None:
                missing = [k for k in ("base_ccy", "quote_ccy", "tick_sz", "lot_sz", "min_sz", "start_px")
                           if k not in values and not (k == "start_px" and start_px is not None)]
                if missing:
                    raise MissingParameter(_WIRE.get(missing[0], missing[0]))
                if f"{values['base_ccy']}-{values['quote_ccy']}" != inst_id:
                    raise InvalidParameter("instId", "must be BASE-QUOTE of baseCcy and quoteCcy")
                known = set(conn.execute(select(currencies.c.ccy).where(
                    currencies.c.ccy.in_([values["base_ccy"], values["quote_ccy"]]))).scalars())
                for field in ("base_ccy", "quote_ccy"):
                    if values[field] not in known:
                        raise NotFound("Currency", values[field])
                conn.execute(instruments.insert().values(
                    inst_id=inst_id, list_time=now, state=values.pop("state", "live"),
                    max_sz=values.pop("max_sz", Decimal("9999999999")), **values))
                conn.execute(price_paths.insert().values(
                    inst_id=inst_id, start_px=start_px, vol=Decimal("0.5"), drift=ZERO, seed=f"stakehouse:{inst_id}",
                    walk=True, priced_until=from_ms(minute_of(now)), spread_bp=Decimal(2), book_levels=5,
                    level_sz=values["lot_sz"], updated_at=now))
                put_point(conn, inst_id, start_px, now)
            else:
                if "base_ccy" in values or "quote_ccy" in values:
                    raise InvalidParameter("baseCcy", "an instrument's currencies cannot change")
                if start_px is not None:
                    raise InvalidParameter("startPx", "only for a new instrument (pin a price instead)")
                if values:
                    conn.execute(instruments.update().where(instruments.c.inst_id == inst_id).values(**values))
            row = conn.execute(select(instruments).where(instruments.c.inst_id == inst_id)).one()
            if row.min_sz > row.max_sz:
                raise InvalidParameter("minSz", "must not exceed maxSz")
            path = conn.execute(select(price_paths).where(price_paths.c.inst_id == inst_id)).one()
            return Instrument(**{f: getattr(row, f) for f in Instrument.__dataclass_fields__}), _path(path)

    def set_price(self, inst_id: str, px: Decimal) -> IndexPrice:
        """Pin (sandbox) or push (production) the index price now: the open minute's candle takes
        it, and the walk continues from it."""
        if not px.is_finite() or px <= 0 or round_down(px, 18) != px or px >= Decimal(10) ** 20:
            raise InvalidParameter("px", "a positive decimal with at most 18 decimals")
        with self.db.write() as conn:
            if conn.execute(select(instruments.c.inst_id).where(instruments.c.inst_id == inst_id)).first() is None:
                raise NotFound("Instrument", inst_id)
            now = self.clock.now()
            self.price_until(conn, inst_id, now)
            put_point(conn, inst_id, px, now)
            return IndexPrice(inst_id, px, now)


def put_point(conn: Connection, inst_id: str, px: Decimal, at: dt.datetime) -> None:
    """A price point at ``at``: into its minute's candle (opened at the previous close)."""
    ts = minute_of(at)
    this_minute = (index_candles.c.inst_id == inst_id) & (index_candles.c.ts == ts)
    row = conn.execute(select(index_candles).where(this_minute)).first()
    if row is not None:
        conn.execute(index_candles.update().where(this_minute)
                     .values(h=max(row.h, px), l=min(row.l, px), c=px, last_at=at))
        return
    prev = PriceService.latest_in(conn, inst_id, from_ms(ts - 1))
    o = prev.px if prev is not None else px
    conn.execute(index_candles.insert().values(inst_id=inst_id, ts=ts, o=o, h=max(o, px), l=min(o, px), c=px,
                                               last_at=at))


@dataclass(frozen=True)
class Minute:
    """One finished minute of one instrument: its candle's start, low, high and close."""

    ts: int
    low: Decimal
    high: Decimal
    close: Decimal


def walk_minutes(conn: Connection, path: Any, start: int, end: int) -> None:
    """The sandbox walk of one instrument over the minutes ``start <= ts < end`` (Unix ms, whole
    minutes): each close is one step from the previous close, or, in a minute someone pinned,
    from the pin; a walked minute opens at the previous close."""
    pinned = {r.ts: r for r in conn.execute(select(index_candles).where(
        index_candles.c.inst_id == path.inst_id, index_candles.c.ts >= start, index_candles.c.ts < end))}
    prev = PriceService.latest_in(conn, path.inst_id, from_ms(start - 1))
    px = prev.px if prev is not None else path.start_px
    rows: list[dict[str, Any]] = []
    ts = start
    for pin_ts in [*sorted(pinned), end]:
        if pin_ts > ts:  # a run of unpinned minutes, walked in one call
            closes = walk(px, seed=path.seed, inst_id=path.inst_id, first_minute=ts // MINUTE_MS,
                          count=(pin_ts - ts) // MINUTE_MS, vol=path.vol, drift=path.drift, tick=path.tick_sz)
            for close in closes:
                rows.append({"inst_id": path.inst_id, "ts": ts, "o": px, "h": max(px, close), "l": min(px, close),
                             "c": close, "last_at": from_ms(ts + MINUTE_MS)})
                px = close
                ts += MINUTE_MS
        if pin_ts < end:  # the pinned minute's close steps from the pin
            row = pinned[pin_ts]
            close = walk(row.c, seed=path.seed, inst_id=path.inst_id, first_minute=pin_ts // MINUTE_MS, count=1,
                         vol=path.vol, drift=path.drift, tick=path.tick_sz)[0]
            conn.execute(index_candles.update().where(index_candles.c.inst_id == path.inst_id,
                                                      index_candles.c.ts == pin_ts)
                         .values(h=max(row.h, close), l=min(row.l, close), c=close,
                                 last_at=from_ms(pin_ts + MINUTE_MS)))
            px = close
            ts = pin_ts + MINUTE_MS
    if rows:  # many rows (a month is 43 200): the bare driver's executemany, without per-row binding work
        conn.exec_driver_sql(driver_sql(conn, _INSERT_CANDLE), [driver_params(conn, r) for r in rows])


_INSERT_CANDLE = (f"INSERT INTO {index_candles.name} (inst_id, ts, o, h, l, c, last_at) VALUES (%(inst_id)s, "
                  "%(ts)s, %(o)s, %(h)s, %(l)s, %(c)s, %(last_at)s) ON CONFLICT (inst_id, ts) DO NOTHING")


def finished_minutes(conn: Connection, inst_id: str, start: int, end: int) -> list[Minute]:
    """The candles of ``inst_id`` for the minutes ``start <= ts < end``, in time order."""
    return [Minute(r.ts, r.l, r.h, r.c) for r in conn.execute(
        select(index_candles.c.ts, index_candles.c.l, index_candles.c.h, index_candles.c.c)
        .where(index_candles.c.inst_id == inst_id, index_candles.c.ts >= start, index_candles.c.ts < end)
        .order_by(index_candles.c.ts))]


#: Column names -> wire names, for messages.
_WIRE = {"base_ccy": "baseCcy", "quote_ccy": "quoteCcy", "tick_sz": "tickSz", "lot_sz": "lotSz", "min_sz": "minSz",
         "start_px": "startPx"}


def _bar_length(bar: str) -> int:
    if bar not in BARS:
        raise InvalidParameter("bar")
    return BARS[bar]
