"""Pure sandbox-market rules: the seeded index walk, candles into OKX bars, the synthetic book."""

from __future__ import annotations

import _pydecimal
import datetime as dt
import decimal
import hashlib
import itertools
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stakehouse.trading import market_rules as mr
from stakehouse.trading.market_rules import BARS, Candle

D = Decimal
MINUTE = 28_000_000  # 2023-03-27T02:40:00Z as a Unix minute
SEEDS = st.text(max_size=12)
INSTS = st.sampled_from(["ETH-USDT", "BTC-USDT", "SOL-USDC", "DOGE-USDT"])
MINUTES = st.integers(min_value=-(10**9), max_value=10**9)
TICKS = st.sampled_from([D("0.01"), D("0.1"), D("1"), D("0.0001"), D("0.5"), D("0.000001"), D("5")])
VOLS = st.decimals(min_value=0, max_value=3, places=3)
DRIFTS = st.decimals(min_value=-2, max_value=2, places=3)
PRICES = st.decimals(min_value=D("0.000001"), max_value=D(10**7), places=6)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (Fraction(value) / Fraction(step)).denominator == 1


def decimals_of(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


def has_decimals_of(value: Decimal, step: Decimal) -> bool:
    return value.as_tuple().exponent == -decimals_of(step)


# -- the deviate --------------------------------------------------------------------------------


def test_the_deviate_is_pinned() -> None:
    assert str(mr.standard_normal("s", "ETH-USDT", MINUTE)) == "-1.17716961377300322055816650390625"
    assert str(mr.standard_normal("s", "ETH-USDT", 0)) == "0.73384924954734742641448974609375"


@given(SEEDS, INSTS, MINUTES)
def test_the_deviate_is_the_exact_irwin_hall_sum_within_six(seed: str, inst: str, minute: int) -> None:
    digest = hashlib.blake2b(f"{seed}:{inst}:{minute}".encode(), digest_size=48).digest()
    uniforms = [int.from_bytes(digest[4 * i : 4 * i + 4], "big") for i in range(12)]
    z = mr.standard_normal(seed, inst, minute)
    assert Fraction(z) == Fraction(sum(uniforms), 2**32) - 6
    assert -6 <= z <= 6


@pytest.mark.parametrize(("seed", "inst"), [("s", "ETH-USDT"), ("other", "BTC-USDT"), ("", "X")])
def test_2000_deviates_have_mean_near_0_and_variance_near_1(seed: str, inst: str) -> None:
    zs = [Fraction(mr.standard_normal(seed, inst, MINUTE + i)) for i in range(2000)]
    mean = sum(zs, Fraction(0)) / len(zs)
    variance = sum(((z - mean) ** 2 for z in zs), Fraction(0)) / (len(zs) - 1)
    assert abs(mean) <= Fraction(15, 100)
    assert abs(variance - 1) <= Fraction(15, 100)


# -- the walk -----------------------------------------------------------------------------------


def eth_walk(count: int, *, first: int = MINUTE) -> list[Decimal]:
    return mr.walk(
        D(3000), seed="s", inst_id="ETH-USDT", first_minute=first, count=count, vol=D("0.6"), drift=D(0), tick=D("0.01")
    )


def test_the_walk_is_pinned() -> None:
    assert [str(p) for p in eth_walk(3)] == ["2997.08", "3003.08", "3003.71"]
    assert [str(p) for p in eth_walk(3, first=0)] == ["3001.82", "2998.76", "3001.34"]
    fine = mr.step_price(
        D(3000), seed="s", inst_id="ETH-USDT", minute=MINUTE, vol=D("0.6"), drift=D(0), tick=D("1E-30")
    )
    assert str(fine) == "2997.077699321859858219061366651022"  # all 34 digits of the context


def test_the_threads_decimal_context_does_not_matter() -> None:
    book = (D(3000), D("0.01"), D("0.001"), D(2), 5, D("0.5"))
    before = (
        eth_walk(20),
        mr.synthetic_book(book[0], tick=book[1], lot=book[2], spread_bp=book[3], levels=book[4], level_sz=book[5]),
        mr.standard_normal("s", "ETH-USDT", MINUTE),
    )
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_UP)):
        after = (
            eth_walk(20),
            mr.synthetic_book(book[0], tick=book[1], lot=book[2], spread_bp=book[3], levels=book[4], level_sz=book[5]),
            mr.standard_normal("s", "ETH-USDT", MINUTE),
        )
    assert [str(p) for p in after[0]] == [str(p) for p in before[0]]
    assert after[1:] == before[1:]


def test_drift_alone_compounds_per_minute_of_a_365_day_year() -> None:
    # exp(5.256 / 525600) = exp(0.00001): 3000 * 1.00001000005 = 3000.0300001...
    price = mr.step_price(D(3000), seed="s", inst_id="X", minute=1, vol=D(0), drift=D("5.256"), tick=D("0.0001"))
    assert str(price) == "3000.0300"


def test_the_ito_term_cancels_drift_of_half_the_variance() -> None:
    with_drift = mr.step_price(D(3000), seed="s", inst_id="X", minute=7, vol=D(1), drift=D("0.5"), tick=D("1E-20"))
    log_ratio = math.log(float(with_drift) / 3000)
    expected = 1 / math.sqrt(525600) * float(mr.standard_normal("s", "X", 7))
    assert log_ratio == pytest.approx(expected, rel=1e-9)


@given(PRICES, SEEDS, INSTS, MINUTES, VOLS, DRIFTS, TICKS)
def test_a_step_is_a_positive_multiple_of_the_tick_with_its_decimals(
    prev: Decimal, seed: str, inst: str, minute: int, vol: Decimal, drift: Decimal, tick: Decimal
) -> None:
    price = mr.step_price(prev, seed=seed, inst_id=inst, minute=minute, vol=vol, drift=drift, tick=tick)
    assert price >= tick
    assert is_multiple(price, tick)
    assert has_decimals_of(price, tick)


@given(PRICES, SEEDS, INSTS, MINUTES, VOLS, DRIFTS)
def test_a_step_follows_the_gbm_formula(
    prev: Decimal, seed: str, inst: str, minute: int, vol: Decimal, drift: Decimal
) -> None:
    tick = D("1E-12")
    price = mr.step_price(prev, seed=seed, inst_id=inst, minute=minute, vol=vol, drift=drift, tick=tick)
    dt_ = 1 / 525600
    z = float(mr.standard_normal(seed, inst, minute))
    exponent = (float(drift) - float(vol) ** 2 / 2) * dt_ + float(vol) * math.sqrt(dt_) * z
    assert float(price) == pytest.approx(float(prev) * math.exp(exponent), rel=1e-9, abs=1e-12)


@given(PRICES, SEEDS, INSTS, MINUTES, TICKS)
def test_no_vol_and_no_drift_keep_the_price_on_its_tick(
    prev: Decimal, seed: str, inst: str, minute: int, tick: Decimal
) -> None:
    on_tick = max(tick, (prev / tick).to_integral_value() * tick)
    path = mr.walk(on_tick, seed=seed, inst_id=inst, first_minute=minute, count=5, vol=D(0), drift=D(0), tick=tick)
    assert path == [on_tick] * 5
    assert all(has_decimals_of(p, tick) for p in path)


def test_the_price_never_falls_below_one_tick() -> None:
    assert str(mr.step_price(D("0.001"), seed="s", inst_id="X", minute=1, vol=D(0), drift=D(0), tick=D("0.01"))) == (
        "0.01"
    )
    crash = mr.walk(D("0.05"), seed="s", inst_id="X", first_minute=0, count=50, vol=D(0), drift=D(-(10**6)), tick=D(1))
    assert crash == [D(1)] * 50


@given(SEEDS, INSTS, MINUTES, VOLS, DRIFTS, TICKS, st.integers(min_value=0, max_value=10))
def test_chunking_does_not_change_the_path(
    seed: str, inst: str, minute: int, vol: Decimal, drift: Decimal, tick: Decimal, split: int
) -> None:
    def run(start: Decimal, first: int, count: int) -> list[Decimal]:
        return mr.walk(start, seed=seed, inst_id=inst, first_minute=first, count=count, vol=vol, drift=drift, tick=tick)

    whole = run(D(3000), minute, 10)
    head = run(D(3000), minute, split)
    tail = run(head[-1] if head else D(3000), minute + split, 10 - split)
    assert len(whole) == 10
    assert head + tail == whole


@given(SEEDS, SEEDS, INSTS, INSTS)
@settings(max_examples=50)
def test_another_seed_or_instrument_walks_another_path(seed_a: str, seed_b: str, inst_a: str, inst_b: str) -> None:
    assume((seed_a, inst_a) != (seed_b, inst_b))

    def path(seed: str, inst: str) -> list[Decimal]:
        return mr.walk(
            D(3000), seed=seed, inst_id=inst, first_minute=MINUTE, count=50, vol=D("0.6"), drift=D(0), tick=D("0.01")
        )

    assert path(seed_a, inst_a) != path(seed_b, inst_b)


def test_the_walk_matches_an_independent_pure_python_decimal_bit_for_bit() -> None:
    """libmpdec (the C decimal) and _pydecimal are separate code: correctly rounded means equal."""
    P = _pydecimal.Decimal
    wide = _pydecimal.Context(prec=80)
    ctx = _pydecimal.Context(prec=34, rounding=_pydecimal.ROUND_HALF_EVEN)
    dt_ = ctx.divide(P(1), P(525600))
    vol, drift, tick = P("0.6"), P("0.05"), P("1E-30")  # 34 digits at ~3000: every digit shows
    price, expected = P(3000), []
    for minute in range(MINUTE, MINUTE + 200):
        digest = hashlib.blake2b(f"s:ETH-USDT:{minute}".encode(), digest_size=48).digest()
        total = sum(int.from_bytes(digest[4 * i : 4 * i + 4], "big") for i in range(12))
        z = P(total * 5**32 - 6 * 10**32).scaleb(-32, wide)  # exact: 1/2**32 = 5**32/10**32
        mu = ctx.subtract(drift, ctx.divide(ctx.multiply(vol, vol), P(2)))
        exponent = ctx.add(ctx.multiply(mu, dt_), ctx.multiply(ctx.multiply(vol, ctx.sqrt(dt_)), z))
        raw = ctx.multiply(price, ctx.exp(exponent))
        price = ctx.multiply(ctx.divide(raw, tick).to_integral_value(_pydecimal.ROUND_HALF_EVEN), tick)
        expected.append(str(price.quantize(tick, context=wide)))
    got = mr.walk(
        D(3000),
        seed="s",
        inst_id="ETH-USDT",
        first_minute=MINUTE,
        count=200,
        vol=D("0.6"),
        drift=D("0.05"),
        tick=D("1E-30"),
    )
    assert [str(p) for p in got] == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"prev": D(0)}, {"prev": D(-1)}, {"tick": D(0)}, {"tick": D("-0.01")}, {"vol": D("-0.1")}],
)
def test_a_step_refuses_bad_inputs(kwargs: dict[str, Decimal]) -> None:
    args = {"prev": D(3000), "vol": D("0.6"), "drift": D(0), "tick": D("0.01")} | kwargs
    with pytest.raises(ValueError):
        mr.step_price(
            args["prev"], seed="s", inst_id="X", minute=1, vol=args["vol"], drift=args["drift"], tick=args["tick"]
        )


def test_a_walk_of_no_minutes_is_empty_and_a_negative_count_is_refused() -> None:
    assert eth_walk(0) == []
    with pytest.raises(ValueError):
        eth_walk(-1)


# -- bars and candles ---------------------------------------------------------------------------

HK = dt.timezone(dt.timedelta(hours=8))
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def ms(text: str) -> int:
    return int((dt.datetime.fromisoformat(text) - EPOCH).total_seconds() * 1000)


@pytest.mark.parametrize(
    ("ts", "bar", "start"),
    [
        ("2024-03-05T10:00:00+00:00", "1D", "2024-03-04T16:00:00+00:00"),
        ("2024-03-05T17:00:00+00:00", "1D", "2024-03-05T16:00:00+00:00"),
        ("2024-03-05T10:00:00+00:00", "1Dutc", "2024-03-05T00:00:00+00:00"),
        ("2024-03-05T10:00:00+00:00", "6H", "2024-03-05T10:00:00+00:00"),
        ("2024-03-05T09:59:59+00:00", "6H", "2024-03-05T04:00:00+00:00"),
        ("2024-03-05T10:00:00+00:00", "6Hutc", "2024-03-05T06:00:00+00:00"),
        ("2024-03-05T10:00:00+00:00", "12H", "2024-03-05T04:00:00+00:00"),
        ("2024-03-05T10:00:00+00:00", "4H", "2024-03-05T08:00:00+00:00"),
        ("2024-03-05T10:07:31+00:00", "5m", "2024-03-05T10:05:00+00:00"),
        ("2024-03-05T10:07:31+00:00", "1m", "2024-03-05T10:07:00+00:00"),
        # 2024-03-07 is a Thursday; the HK week began Monday 2024-03-04 00:00 HKT.
        ("2024-03-07T12:00:00+00:00", "1W", "2024-03-03T16:00:00+00:00"),
        ("2024-03-07T12:00:00+00:00", "1Wutc", "2024-03-04T00:00:00+00:00"),
        ("2024-03-03T17:00:00+00:00", "1W", "2024-03-03T16:00:00+00:00"),  # Monday 01:00 HKT
        ("2024-03-03T17:00:00+00:00", "1Wutc", "2024-02-26T00:00:00+00:00"),  # still Sunday in UTC
        ("1970-01-01T00:00:00+00:00", "1Wutc", "1969-12-29T00:00:00+00:00"),
    ],
)
def test_bar_starts(ts: str, bar: str, start: str) -> None:
    assert mr.bar_start(ms(ts), bar) == ms(start)


@given(st.integers(min_value=-(10**12), max_value=5 * 10**12), st.sampled_from(sorted(BARS)))
def test_a_bar_holds_its_instant_and_starts_on_its_zone_boundary(ts: int, bar: str) -> None:
    start = mr.bar_start(ts, bar)
    assert start <= ts < start + BARS[bar]
    assert mr.bar_start(start, bar) == start
    local = (EPOCH + dt.timedelta(milliseconds=start)).astimezone(dt.UTC if bar.endswith("utc") else HK)
    assert local.second == 0 and local.microsecond == 0
    unit, count = bar.removesuffix("utc")[-1], int(bar.removesuffix("utc")[:-1])
    if unit == "m":
        assert (local.hour * 60 + local.minute) % count == 0
    elif unit == "H":
        assert local.minute == 0 and local.hour % count == 0
    else:
        assert local.minute == 0 and local.hour == 0
        if unit == "W":
            assert local.weekday() == 0
        else:
            assert (local.date() - dt.date(1970, 1, 1)).days % count == 0


def test_months_and_unknown_bars_are_refused() -> None:
    for bar in ("1M", "3M", "1Mutc", "7m", "1d"):
        with pytest.raises(ValueError):
            mr.bar_start(0, bar)
        with pytest.raises(ValueError):
            mr.aggregate([], bar)


def test_aggregate_merges_minutes_into_bars() -> None:
    t0 = ms("2024-03-05T10:03:00+00:00")
    minutes = [
        Candle(t0, D(10), D(12), D(9), D(11)),
        Candle(t0 + 60_000, D(11), D(15), D(10), D(14)),
        Candle(t0 + 3 * 60_000, D(14), D(14), D(8), D(13)),  # 10:06, the next 5m bar (gap at 10:05)
        Candle(t0 + 5 * 60_000, D(13), D(13), D(12), D("12.5")),
    ]
    assert mr.aggregate(minutes, "5m") == [
        Candle(ms("2024-03-05T10:00:00+00:00"), D(10), D(15), D(9), D(14)),
        Candle(ms("2024-03-05T10:05:00+00:00"), D(14), D(14), D(8), D("12.5")),
    ]
    assert mr.aggregate(minutes, "1D") == [Candle(ms("2024-03-04T16:00:00+00:00"), D(10), D(15), D(8), D("12.5"))]
    assert mr.aggregate(iter(minutes), "1m") == minutes
    assert mr.aggregate([], "1H") == []


def test_aggregate_refuses_minutes_out_of_order() -> None:
    one = Candle(60_000, D(1), D(1), D(1), D(1))
    with pytest.raises(ValueError):
        mr.aggregate([one, one], "5m")
    with pytest.raises(ValueError):
        mr.aggregate([one, Candle(0, D(1), D(1), D(1), D(1))], "5m")


@st.composite
def minute_candles(draw: st.DrawFn) -> list[Candle]:
    ts = draw(st.integers(min_value=0, max_value=2 * 10**12)) // 60_000 * 60_000
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=60))):
        ts += 60_000 * draw(st.sampled_from([1, 1, 1, 2, 7, 61, 1441, 10_081]))
        o, c, a, b = (D(draw(st.integers(min_value=1, max_value=10_000))) for _ in range(4))
        out.append(Candle(ts, o, max(o, c, a, b), min(o, c, a, b), c))
    return out


@given(minute_candles(), st.sampled_from(sorted(BARS)))
def test_aggregate_keeps_the_ohlc_rules(minutes: list[Candle], bar: str) -> None:
    bars = mr.aggregate(minutes, bar)
    assert [b.ts for b in bars] == sorted({mr.bar_start(m.ts, bar) for m in minutes})
    for b in bars:
        inside = [m for m in minutes if b.ts <= m.ts < b.ts + BARS[bar]]
        assert inside
        assert (b.o, b.c) == (inside[0].o, inside[-1].c)
        assert b.h == max(m.h for m in inside) and b.l == min(m.l for m in inside)
    assert sum(1 for m in minutes if any(b.ts <= m.ts < b.ts + BARS[bar] for b in bars)) == len(minutes)


# -- the synthetic book -------------------------------------------------------------------------


def as_text(levels: list[tuple[Decimal, Decimal]]) -> list[tuple[str, str]]:
    return [(str(p), str(s)) for p, s in levels]


def test_the_book_is_pinned() -> None:
    asks, bids = mr.synthetic_book(D(3000), tick=D("0.01"), lot=D("0.001"), spread_bp=D(2), levels=3, level_sz=D("0.5"))
    assert as_text(asks) == [("3000.30", "0.500"), ("3000.60", "1.000"), ("3000.90", "1.500")]
    assert as_text(bids) == [("2999.70", "0.500"), ("2999.40", "1.000"), ("2999.10", "1.500")]


def test_colliding_levels_move_one_tick_out_and_bids_stop_above_zero() -> None:
    asks, bids = mr.synthetic_book(D("0.05"), tick=D("0.01"), lot=D(1), spread_bp=D(1), levels=6, level_sz=D("2.5"))
    assert as_text(asks) == [
        ("0.06", "2"),
        ("0.07", "5"),
        ("0.08", "7"),
        ("0.09", "10"),
        ("0.10", "12"),
        ("0.11", "15"),
    ]
    assert as_text(bids) == [("0.04", "2"), ("0.03", "5"), ("0.02", "7"), ("0.01", "10")]


@given(
    st.decimals(min_value=D("0.0001"), max_value=D(10**6), places=4),
    TICKS,
    st.sampled_from([D("0.001"), D("1"), D("0.5"), D("0.000001"), D("10")]),
    st.decimals(min_value=D("0.1"), max_value=D(500), places=1),
    st.integers(min_value=1, max_value=400),
    st.decimals(min_value=D(10), max_value=D(1000), places=3),
)
@settings(max_examples=60)
def test_the_book_is_monotonic_around_the_index_on_ticks_and_lots(
    index: Decimal, tick: Decimal, lot: Decimal, spread_bp: Decimal, levels: int, level_sz: Decimal
) -> None:
    asks, bids = mr.synthetic_book(index, tick=tick, lot=lot, spread_bp=spread_bp, levels=levels, level_sz=level_sz)
    assert len(asks) == levels and len(bids) <= levels
    assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
    assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
    assert asks[0][0] > index and (not bids or bids[0][0] < index) and all(p > 0 for p, _ in bids)
    half = spread_bp / 20000
    for i, (price, size) in enumerate(asks):
        assert price >= index * (1 + half * (i + 1)) and is_multiple(price, tick) and has_decimals_of(price, tick)
        assert size == (level_sz * (i + 1) / lot).to_integral_value(rounding="ROUND_FLOOR") * lot
        assert is_multiple(size, lot) and size >= lot and has_decimals_of(size, lot)
    for i, (price, size) in enumerate(bids):
        assert price <= index * (1 - half * (i + 1)) and is_multiple(price, tick) and has_decimals_of(price, tick)
        assert size == asks[i][1]
    if len(bids) < levels:  # the first bid left out would have been at or below zero
        assert index * (1 - half * (len(bids) + 1)) < tick or bids[-1][0] == tick


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": 0},
        {"levels": 401},
        {"index": D(0)},
        {"tick": D(0)},
        {"lot": D(0)},
        {"spread_bp": D(0)},
        {"level_sz": D("0.0001")},
    ],
)
def test_the_book_refuses_bad_inputs(kwargs: dict[str, Decimal | int]) -> None:
    args: dict[str, Decimal | int] = {
        "index": D(3000),
        "tick": D("0.01"),
        "lot": D("0.001"),
        "spread_bp": D(2),
        "levels": 5,
        "level_sz": D(1),
    }
    args |= kwargs
    mr.synthetic_book(D(3000), tick=D("0.01"), lot=D("0.001"), spread_bp=D(2), levels=5, level_sz=D(1))  # valid
    with pytest.raises(ValueError):
        mr.synthetic_book(
            D(args["index"]),
            tick=D(args["tick"]),
            lot=D(args["lot"]),
            spread_bp=D(args["spread_bp"]),
            levels=int(args["levels"]),
            level_sz=D(args["level_sz"]),
        )


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2),
       st.decimals(min_value=Decimal(0), max_value=Decimal(3), places=3),
       st.decimals(min_value=Decimal(-2), max_value=Decimal(2), places=3),
       st.sampled_from([Decimal("0.01"), Decimal("0.1"), Decimal("1"), Decimal("0.00001")]),
       st.integers(min_value=0, max_value=40_000_000), st.integers(min_value=1, max_value=30))
def test_walk_is_step_price_repeated_digit_for_digit(start: Decimal, vol: Decimal, drift: Decimal, tick: Decimal,
                                                     minute: int, count: int) -> None:
    """``walk`` computes the per-minute constants once; it must give exactly what calling
    ``step_price`` minute after minute gives."""
    expected, price = [], start
    for m in range(minute, minute + count):
        price = mr.step_price(price, seed="w", inst_id="BTC-USDT", minute=m, vol=vol, drift=drift, tick=tick)
        expected.append(price)
    got = mr.walk(start, seed="w", inst_id="BTC-USDT", first_minute=minute, count=count, vol=vol, drift=drift,
                  tick=tick)
    assert [str(p) for p in got] == [str(p) for p in expected]
