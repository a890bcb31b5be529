"""Pure rules of the sandbox market: the seeded index-price walk, 1-minute candles aggregated into
OKX bars, and the synthetic order book quoted around the index.

No I/O, no clock, no ``float``, no :mod:`random`: every result is a :class:`decimal.Decimal`
computed in an explicit local context (never the thread's context), so a walk is reproduced bit
for bit on every machine. Prices carry exactly the decimals of their tick, sizes those of their lot.
"""

from __future__ import annotations

import decimal
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

#: The walk's context: 34 digits, and ``exp``/``sqrt`` are correctly rounded, hence portable.
WALK_CONTEXT = decimal.Context(
    prec=34, rounding=ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
)
#: Exact arithmetic for the deviate (at most 43 digits) and the book (finite decimals / 20000).
_EXACT = decimal.Context(
    prec=80, rounding=ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
)
MINUTES_PER_YEAR = 525600  # 365 days
_DT = WALK_CONTEXT.divide(Decimal(1), Decimal(MINUTES_PER_YEAR))
_SQRT_DT = WALK_CONTEXT.sqrt(_DT)
_TWO_32 = Decimal(2**32)
_TWELVE_WORDS = struct.Struct(">12I")  # 48 bytes as 12 unsigned 32-bit big-endian integers


def standard_normal(seed: str, inst_id: str, minute: int) -> Decimal:
    """The walk's deviate for ``minute`` (Unix minute, epoch ms // 60000): Irwin-Hall with 12 uniforms.

    The BLAKE2b digest (48 bytes) of ``"{seed}:{inst_id}:{minute}"`` is read as 12 unsigned 32-bit
    big-endian integers u_i; the result is ``sum(u_i) / 2**32 - 6`` exactly: mean 0, variance 1,
    always within [-6, 6).
    """
    digest = hashlib.blake2b(f"{seed}:{inst_id}:{minute}".encode(), digest_size=48).digest()
    total = sum(_TWELVE_WORDS.unpack(digest))
    return _EXACT.subtract(_EXACT.divide(Decimal(total), _TWO_32), Decimal(6))


def _scale(step: Decimal) -> Decimal:
    """The quantum a multiple of ``step`` is written with: the step's own decimals, none if whole."""
    exponent = step.normalize(_EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(min(exponent, 0), _EXACT)


def _to_step(value: Decimal, step: Decimal, rounding: str, ctx: decimal.Context) -> Decimal:
    """``value`` rounded to a multiple of ``step`` with ``rounding``, written with ``step``'s decimals."""
    units = ctx.divide(value, step).to_integral_value(rounding=rounding, context=ctx)
    return ctx.multiply(units, step).quantize(_scale(step), context=_EXACT)


def step_price(
    prev: Decimal, *, seed: str, inst_id: str, minute: int, vol: Decimal, drift: Decimal, tick: Decimal
) -> Decimal:
    """One minute of geometric Brownian motion from ``prev`` (annual ``vol`` >= 0 and ``drift``).

    ``next = prev * exp((drift - vol**2/2) * dt + vol * sqrt(dt) * Z)`` with ``dt = 1/525600`` and
    ``Z = standard_normal(seed, inst_id, minute)``, all in :data:`WALK_CONTEXT`; then rounded half
    even to a multiple of ``tick``, never below one tick. With ``vol == drift == 0`` the price is
    ``prev`` (on the tick).
    """
    if not tick > 0:
        raise ValueError("tick must be positive")
    if not prev > 0:
        raise ValueError("prev must be positive")
    if vol < 0:
        raise ValueError("vol must not be negative")
    ctx = WALK_CONTEXT
    z = standard_normal(seed, inst_id, minute)
    mu = ctx.subtract(drift, ctx.divide(ctx.multiply(vol, vol), Decimal(2)))
    exponent = ctx.add(ctx.multiply(mu, _DT), ctx.multiply(ctx.multiply(vol, _SQRT_DT), z))
    price = _to_step(ctx.multiply(prev, ctx.exp(exponent)), tick, ROUND_HALF_EVEN, ctx)
    return max(price, _to_step(tick, tick, ROUND_HALF_EVEN, ctx))


def walk(
    start: Decimal,
    *,
    seed: str,
    inst_id: str,
    first_minute: int,
    count: int,
    vol: Decimal,
    drift: Decimal,
    tick: Decimal,
) -> list[Decimal]:
    """The prices of minutes ``first_minute .. first_minute + count - 1``, each a step from the last.

    The first is ``step_price(start, minute=first_minute)``. Chunking never changes the path: a walk
    continued from its last price and minute equals one longer walk.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if count == 0:
        return []
    # The first step checks the arguments; the others repeat step_price's arithmetic with what does
    # not change from minute to minute computed once (the same operations in the same context, so
    # the same digits as calling step_price each minute: the tests compare both).
    price = step_price(start, seed=seed, inst_id=inst_id, minute=first_minute, vol=vol, drift=drift, tick=tick)
    prices = [price]
    ctx = WALK_CONTEXT
    mu = ctx.subtract(drift, ctx.divide(ctx.multiply(vol, vol), Decimal(2)))
    mu_dt, vol_sqrt_dt = ctx.multiply(mu, _DT), ctx.multiply(vol, _SQRT_DT)
    quantum = _scale(tick)
    floor = _to_step(tick, tick, ROUND_HALF_EVEN, ctx)
    for minute in range(first_minute + 1, first_minute + count):
        exponent = ctx.add(mu_dt, ctx.multiply(vol_sqrt_dt, standard_normal(seed, inst_id, minute)))
        units = ctx.divide(ctx.multiply(price, ctx.exp(exponent)), tick).to_integral_value(
            rounding=ROUND_HALF_EVEN, context=ctx)
        price = max(ctx.multiply(units, tick).quantize(quantum, context=_EXACT), floor)
        prices.append(price)
    return prices


# -- candles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candle:
    """An OHLC candle of the index; ``ts`` is the bar's start in Unix ms."""

    ts: int
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - OKX's name for the low
    c: Decimal


_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY
_HK = 8 * _HOUR  # Hong Kong is UTC+8, no daylight saving
_THURSDAY = 3 * _DAY  # 1970-01-01 was a Thursday: a Monday-aligned week is offset by three days

#: OKX ``bar`` values and their length in ms. Bars of 6H and more align to Hong Kong time (OKX's
#: default) unless suffixed ``utc``; shorter bars are the same in both zones. Weeks start Monday
#: 00:00 in their zone; 2D/3D count from the epoch in their zone. Months (1M, 3M) are not supported:
#: their length varies.
BARS: dict[str, int] = {
    "1m": _MINUTE, "3m": 3 * _MINUTE, "5m": 5 * _MINUTE, "15m": 15 * _MINUTE, "30m": 30 * _MINUTE,
    "1H": _HOUR, "2H": 2 * _HOUR, "4H": 4 * _HOUR,
    "6H": 6 * _HOUR, "12H": 12 * _HOUR, "1D": _DAY, "2D": 2 * _DAY, "3D": 3 * _DAY, "1W": _WEEK,
    "6Hutc": 6 * _HOUR, "12Hutc": 12 * _HOUR, "1Dutc": _DAY, "2Dutc": 2 * _DAY, "3Dutc": 3 * _DAY, "1Wutc": _WEEK,
}  # fmt: skip


def _offset(bar: str) -> int:
    """What is added to a Unix ms before flooring to the bar length (zone, then week start)."""
    length = BARS[bar]
    zone = _HK if length >= 6 * _HOUR and not bar.endswith("utc") else 0
    return zone + (_THURSDAY if length == _WEEK else 0)


def bar_start(ts_ms: int, bar: str) -> int:
    """The start (Unix ms) of the ``bar`` containing ``ts_ms``: ``((ts + off) // len) * len - off``."""
    if bar not in BARS:
        raise ValueError(f"unsupported bar {bar!r}")
    length, offset = BARS[bar], _offset(bar)
    return ((ts_ms + offset) // length) * length - offset


def aggregate(minutes: Iterable[Candle], bar: str) -> list[Candle]:
    """1-minute candles (strictly ascending ``ts``, gaps allowed) merged into ``bar`` candles.

    One candle per bar holding at least one minute, ascending: ``ts`` the bar start, ``o`` the first
    minute's open, ``c`` the last minute's close, ``h`` the highest high, ``l`` the lowest low.
    """
    if bar not in BARS:
        raise ValueError(f"unsupported bar {bar!r}")
    out: list[Candle] = []
    last_ts: int | None = None
    for m in minutes:
        if last_ts is not None and m.ts <= last_ts:
            raise ValueError("minute candles must be in strictly ascending ts order")
        last_ts = m.ts
        start = bar_start(m.ts, bar)
        if out and out[-1].ts == start:
            cur = out[-1]
            out[-1] = Candle(start, cur.o, max(cur.h, m.h), min(cur.l, m.l), m.c)
        else:
            out.append(Candle(start, m.o, m.h, m.l, m.c))
    return out


# -- the synthetic book -------------------------------------------------------------------------

Level = tuple[Decimal, Decimal]


def synthetic_book(
    index: Decimal, *, tick: Decimal, lot: Decimal, spread_bp: Decimal, levels: int, level_sz: Decimal
) -> tuple[list[Level], list[Level]]:
    """(asks ascending, bids descending) of (price, size) quoted around ``index``.

    Level i (0-based): ask ``index * (1 + spread_bp/20000 * (i+1))`` rounded up to the tick, bid
    ``index * (1 - spread_bp/20000 * (i+1))`` rounded down; a level that rounds onto its neighbour
    moves one tick farther, so prices are strictly monotonic; bids at or below zero are left out.
    Size ``level_sz * (i+1)`` rounded down to the lot (depth grows away from the index).
    """
    if not 1 <= levels <= 400:
        raise ValueError("levels must be between 1 and 400")
    if not (index > 0 and tick > 0 and lot > 0 and spread_bp > 0):
        raise ValueError("index, tick, lot and spread_bp must be positive")
    if level_sz < lot:
        raise ValueError("level_sz must be at least one lot")
    ctx = _EXACT
    half = ctx.divide(spread_bp, Decimal(20000))
    asks: list[Level] = []
    bids: list[Level] = []
    for i in range(levels):
        away = ctx.multiply(half, Decimal(i + 1))
        size = _to_step(ctx.multiply(level_sz, Decimal(i + 1)), lot, ROUND_FLOOR, ctx)
        ask = _to_step(ctx.multiply(index, ctx.add(Decimal(1), away)), tick, ROUND_CEILING, ctx)
        if asks and ask <= asks[-1][0]:
            ask = _to_step(ctx.add(asks[-1][0], tick), tick, ROUND_CEILING, ctx)
        asks.append((ask, size))
        bid = _to_step(ctx.multiply(index, ctx.subtract(Decimal(1), away)), tick, ROUND_FLOOR, ctx)
        if bids and bid >= bids[-1][0]:
            bid = _to_step(ctx.subtract(bids[-1][0], tick), tick, ROUND_FLOOR, ctx)
        if bid > 0:  # once a level is at or below zero, every farther one is too
            bids.append((bid, size))
    return asks, bids
