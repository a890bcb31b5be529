"""The pure rules of provider staking (``staking/provider_rules.py``, staking-rules.md section 9,
gemini-staking.md 7.8 and open points 10, 13, 18) and the accrual-day calendar
(``jobs/schedule.Daily`` with ``ends_at``).

Oracles: exact rational arithmetic (:class:`fractions.Fraction`, including the exact 365th power
of the APY formula) rounded by hand, brute-force grouping of accruals, and calendar arithmetic done
without :class:`Daily`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import string
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stakehouse.jobs.schedule import Daily
from stakehouse.money import round_down
from stakehouse.staking.provider.rules import (
    Accrual,
    RatePeriod,
    apy_pct,
    daily_interest,
    deposit_allowed,
    event_no,
    month_start,
    rate_pct,
    rate_periods,
    transaction_id,
)

ZERO = Decimal(0)
UTC = dt.UTC
ID_SPACE = 36**8
#: Every documented (ratePct, apyPct) pair of gemini-staking.md 7.8.
DOCUMENTED = [("4.29386", "4.39"), ("2.280197", "2.31"), ("3.215282", "3.27"), ("0.958909", "0.96"),
              ("5.592369", "5.75"), ("5.073801", "5.2"), ("0.65913408", "0.66")]


# -- oracles ------------------------------------------------------------------------------------


def floor_to(value: Fraction, precision: int) -> Decimal:
    """Exact round-down of a non-negative rational to ``precision`` places."""
    assert value >= 0
    return Decimal(math.floor(value * 10**precision)).scaleb(-precision)


def half_even_to(value: Fraction, places: int) -> Decimal:
    """Exact round-half-even of a rational to ``places`` decimals."""
    scaled = value * 10**places
    low = math.floor(scaled)
    rest = scaled - low
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and low % 2 == 1):
        low += 1
    return Decimal(low).scaleb(-places)


def oracle_apy(rate_bps: Decimal) -> Decimal:
    """``round(((1 + ratePct/100/365)^365 - 1) * 100, 2)`` with the power taken exactly."""
    daily = Fraction(rate_bps) / 100 / 100 / 365
    return half_even_to(((1 + daily) ** 365 - 1) * 100, 2)


def oracle_interest(eligible: Decimal, rate_bps: Decimal | None, precision: int) -> Decimal:
    if rate_bps is None or eligible <= 0:
        return ZERO
    return floor_to(Fraction(eligible) * Fraction(rate_bps) / 10_000 / 365, precision)


# -- strategies ---------------------------------------------------------------------------------

#: Basis points as the operator may publish them: 0..100000 with up to 8 decimals.
bps = st.one_of(
    st.integers(0, 100_000 * 10**8).map(lambda n: Decimal(n).scaleb(-8)),
    st.integers(0, 2_000).map(Decimal),
    st.sampled_from([Decimal("0.00000001"), Decimal("429.386"), Decimal("228.0197"), Decimal(100_000)]),
)
#: Amounts up to NUMERIC(38, 18): 20 integer digits, 18 decimals.
amounts18 = st.one_of(
    st.integers(0, 10**38 - 1).map(lambda n: Decimal(n).scaleb(-18)),
    st.decimals(min_value=0, max_value=Decimal(1000), places=8),
)
precisions = st.integers(0, 18)
moments = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31),
                       timezones=st.just(UTC))
ends_ats = st.one_of(st.just(dt.time(20, 0)),
                     st.times().map(lambda t: t.replace(microsecond=0)),
                     st.times())


# -- APY (7.8) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("pct", "apy"), DOCUMENTED)
def test_apy_reproduces_every_documented_pair(pct: str, apy: str) -> None:
    rate_bps = Decimal(pct) * 100
    assert rate_pct(rate_bps) == Decimal(pct)
    assert apy_pct(rate_bps) == Decimal(apy)
    assert oracle_apy(rate_bps) == Decimal(apy)  # the oracle agrees with the documentation too


@given(bps)
@example(Decimal(0))
@example(Decimal(100_000))
def test_apy_is_the_exact_power_rounded_half_even(rate_bps: Decimal) -> None:
    got = apy_pct(rate_bps)
    assert got == oracle_apy(rate_bps)
    assert got == got.quantize(Decimal("0.01"))  # two places, as on the wire
    assert got >= rate_pct(rate_bps).quantize(Decimal("0.01"), rounding="ROUND_FLOOR")  # compounding adds


@given(bps)
def test_rate_pct_is_bps_over_100_exactly(rate_bps: Decimal) -> None:
    assert Fraction(rate_pct(rate_bps)) == Fraction(rate_bps) / 100


@given(bps, bps)
def test_apy_never_falls_when_the_rate_rises(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert apy_pct(low) <= apy_pct(high)


# -- one day's interest (9, open point 18) --------------------------------------------------------


def test_daily_interest_by_hand() -> None:
    # 365 * 10000 bps / 10000 / 365 = 1 per day on 365 staked, exactly
    assert daily_interest(Decimal(365), Decimal(10_000), 18) == Decimal(1)
    # 5 ETH at 540 bps: 5 * 0.054 / 365 = 0.000739726027397260273972... -> 18 places, down
    assert daily_interest(Decimal(5), Decimal(540), 18) == Decimal("0.000739726027397260")
    assert daily_interest(Decimal(5), Decimal(540), 8) == Decimal("0.00073972")
    assert daily_interest(Decimal(5), Decimal(540), 0) == ZERO
    assert daily_interest(Decimal(5), None, 18) == ZERO
    assert daily_interest(Decimal(-5), Decimal(540), 18) == ZERO


@given(st.one_of(amounts18, amounts18.map(lambda a: -a)), st.one_of(st.none(), bps), precisions)
def test_daily_interest_is_the_exact_formula_rounded_down(eligible: Decimal, rate_bps: Decimal | None,
                                                          precision: int) -> None:
    got = daily_interest(eligible, rate_bps, precision)
    assert got == oracle_interest(eligible, rate_bps, precision)
    assert round_down(got, precision) == got
    if rate_bps is not None and eligible > 0:
        exact = Fraction(eligible) * Fraction(rate_bps) / 10_000 / 365
        assert Fraction(got) <= exact < Fraction(got) + Fraction(1, 10**precision)


# -- rate periods (open point 10) -----------------------------------------------------------------


def brute_periods(accruals: list[Accrual]) -> list[RatePeriod]:
    """Group the accruals, in time order, into maximal runs of equal rate."""
    ordered = sorted(accruals, key=lambda a: a.at)
    out = []
    for rate, group in itertools.groupby(ordered, key=lambda a: a.rate_bps):
        members = list(group)
        out.append(RatePeriod(rate, len(members), sum((a.amount for a in members), ZERO), members[0].at,
                              members[-1].at))
    return out


@st.composite
def accrual_lists(draw: st.DrawFn) -> list[Accrual]:
    days = draw(st.lists(st.integers(0, 60), unique=True, max_size=25))
    pool = draw(st.lists(bps, min_size=1, max_size=3))
    base = dt.datetime(2026, 1, 1, 20, tzinfo=UTC)
    out = [Accrual(base + dt.timedelta(days=d), draw(st.sampled_from(pool)),
                   draw(st.decimals(min_value=Decimal("0.000000000000000001"), max_value=10, places=18)))
           for d in days]
    return draw(st.permutations(out))


@given(accrual_lists())
def test_rate_periods_merge_equal_neighbours_and_split_on_change(accruals: list[Accrual]) -> None:
    got = rate_periods(accruals)
    assert got == brute_periods(accruals)
    assert sum(p.count for p in got) == len(accruals)
    assert sum((p.total for p in got), ZERO) == sum((a.amount for a in accruals), ZERO)
    for a, b in itertools.pairwise(got):
        assert a.rate_bps != b.rate_bps  # a change of rate opened every new period
        assert a.last_at < b.first_at


def test_rate_periods_by_hand() -> None:
    t = [dt.datetime(2026, 1, d, 20, tzinfo=UTC) for d in range(1, 7)]
    rates = [Decimal(540), Decimal("540.00"), Decimal(600), Decimal(600), Decimal(540), Decimal(540)]
    acc = [Accrual(at, r, Decimal(i + 1)) for i, (at, r) in enumerate(zip(t, rates, strict=True))]
    assert rate_periods(reversed(acc)) == [
        RatePeriod(Decimal(540), 2, Decimal(3), t[0], t[1]),  # 540 == 540.00: one period
        RatePeriod(Decimal(600), 2, Decimal(7), t[2], t[3]),
        RatePeriod(Decimal(540), 2, Decimal(11), t[4], t[5]),  # back to 540: a new period
    ]
    assert rate_periods([]) == []


# -- transaction ids ------------------------------------------------------------------------------

event_numbers = st.one_of(st.integers(1, ID_SPACE - 1), st.integers(1, 10_000),
                          st.sampled_from([1, 2, ID_SPACE - 1, ID_SPACE // 2]))
ALNUM_UPPER = set(string.digits + string.ascii_uppercase)


@given(event_numbers)
def test_transaction_id_shape_and_inverse(n: int) -> None:
    tid = transaction_id(n)
    assert len(tid) == 8 and set(tid) <= ALNUM_UPPER
    assert event_no(tid) == n


@given(st.sets(event_numbers, min_size=2, max_size=200))
def test_transaction_ids_are_injective(numbers: set[int]) -> None:
    assert len({transaction_id(n) for n in numbers}) == len(numbers)


def test_consecutive_events_get_unrelated_looking_ids() -> None:
    ids = [transaction_id(n) for n in range(1, 2001)]
    assert len(set(ids)) == len(ids)
    assert ids != sorted(ids)  # not sequential to the eye
    assert all(event_no(t) == n for n, t in enumerate(ids, start=1))


@pytest.mark.parametrize("n", [0, -1, ID_SPACE, ID_SPACE + 5])
def test_transaction_id_out_of_range(n: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        transaction_id(n)


@pytest.mark.parametrize("text", ["", "ABC", "ABCDEFG", "ABCDEFGHI", "abcdefgh", "ABCD-FGH", "ABCDÉFGH",
                                  "00000000"])
def test_event_no_of_text_that_is_no_id(text: str) -> None:
    assert event_no(text) is None


@given(st.text(alphabet=sorted(ALNUM_UPPER), min_size=8, max_size=8))
def test_every_id_shaped_text_but_zero_maps_back(text: str) -> None:
    n = event_no(text)
    if n is None:
        assert text == "00000000"
    else:
        assert 0 < n < ID_SPACE and transaction_id(n) == text


# -- the monthly USD deposit limit (open point 13) ----------------------------------------------

prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(100_000), places=8)
smalls = st.decimals(min_value=0, max_value=Decimal(10**6), places=18)


@given(smalls, smalls, prices, st.one_of(st.none(), smalls))
def test_deposit_allowed_is_exact(used: Decimal, amount: Decimal, price: Decimal, limit: Decimal | None) -> None:
    expected = limit is None or Fraction(used) + Fraction(amount) * Fraction(price) <= Fraction(limit)
    assert deposit_allowed(used, amount, price, limit) is expected


@given(smalls, st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal(10**6), places=18), prices)
def test_deposit_exactly_at_the_limit_is_allowed_one_unit_over_is_not(used: Decimal, amount: Decimal,
                                                                    price: Decimal) -> None:
    limit = used + amount * price  # exact: 80 significant digits hold it
    assert Fraction(limit) == Fraction(used) + Fraction(amount) * Fraction(price)
    assert deposit_allowed(used, amount, price, limit)
    assert not deposit_allowed(used, amount + Decimal("1e-18"), price, limit)
    assert deposit_allowed(used, amount, price, None)


def test_deposit_limit_by_hand() -> None:
    # 500000 USD a month at 3000 USD: 100 ETH used, 66.66... left
    assert deposit_allowed(Decimal(300_000), Decimal("66.666666"), Decimal(3000), Decimal(500_000))
    assert not deposit_allowed(Decimal(300_000), Decimal("66.666667"), Decimal(3000), Decimal(500_000))
    assert deposit_allowed(Decimal(0), Decimal(200), Decimal(2500), Decimal(500_000))  # exactly at the limit
    assert not deposit_allowed(Decimal(0), Decimal("200.000000000000000001"), Decimal(2500), Decimal(500_000))


# -- month_start --------------------------------------------------------------------------------


@given(st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2099, 12, 30),
                    timezones=st.sampled_from([UTC, ZoneInfo("Europe/Istanbul"), ZoneInfo("America/New_York"),
                                               ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Niue")])))
def test_month_start_is_the_first_of_the_utc_month(moment: dt.datetime) -> None:
    got = month_start(moment)
    assert got.utcoffset() == dt.timedelta(0)
    assert (got.day, got.hour, got.minute, got.second, got.microsecond) == (1, 0, 0, 0, 0)
    assert got <= moment
    # the next first of a month, found by walking the days, is after the moment
    nxt = got + dt.timedelta(days=1)
    while nxt.day != 1:
        nxt += dt.timedelta(days=1)
    assert moment < nxt
    assert month_start(got) == got and month_start(nxt - dt.timedelta(microseconds=1)) == got


def test_month_start_by_hand() -> None:
    # 1 April 01:00 in Istanbul (UTC+3) is still March in UTC
    istanbul = ZoneInfo("Europe/Istanbul")
    assert month_start(dt.datetime(2026, 4, 1, 1, 0, tzinfo=istanbul)) == dt.datetime(2026, 3, 1, tzinfo=UTC)
    assert month_start(dt.datetime(2026, 4, 1, 0, 0, tzinfo=UTC)) == dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert month_start(dt.datetime(2028, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)) == dt.datetime(2028, 2, 1,
                                                                                                tzinfo=UTC)


# -- accrual days: Daily(ends_at) ---------------------------------------------------------------


def expected_day_utc(moment: dt.datetime, ends_at: dt.time) -> dt.date:
    """Without Daily: in UTC, day D is [D-1 ends_at, D ends_at)."""
    utc = moment.astimezone(UTC)
    end_today = dt.datetime.combine(utc.date(), ends_at, UTC)
    return utc.date() if utc < end_today else utc.date() + dt.timedelta(days=1)


@settings(max_examples=300)
@given(moments, ends_ats)
@example(dt.datetime(2026, 3, 10, 20, 0, tzinfo=UTC), dt.time(20, 0))
@example(dt.datetime(2026, 3, 10, 19, 59, 59, 999999, tzinfo=UTC), dt.time(20, 0))
@example(dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC), dt.time(20, 0))
@example(dt.datetime(2026, 3, 10, 0, 0, tzinfo=UTC), dt.time(0, 0, 0, 1))
def test_every_moment_is_in_the_period_of_its_day(moment: dt.datetime, ends_at: dt.time) -> None:
    cal = Daily("UTC", ends_at)
    day = cal.day(moment)
    assert day == expected_day_utc(moment, ends_at)
    period = cal.period_of_day(day)
    assert period.start <= moment < period.end
    assert period.key == day.isoformat()
    assert period.end == dt.datetime.combine(day, ends_at, UTC)  # paid at ends_at on D itself
    assert period.end - period.start == dt.timedelta(days=1)
    # no other period holds it: the neighbours end where this starts / start where this ends
    before, after = cal.period_of_day(day - dt.timedelta(days=1)), cal.period_of_day(day + dt.timedelta(days=1))
    assert before.end == period.start and after.start == period.end
    assert not before.start <= moment < before.end and not after.start <= moment < after.end


@settings(max_examples=200)
@given(moments, st.integers(0, 5 * 24 * 60 * 60 * 10**6), ends_ats)
@example(dt.datetime(2026, 3, 10, 20, 0, tzinfo=UTC), 24 * 60 * 60 * 10**6, dt.time(20, 0))
@example(dt.datetime(2026, 3, 10, 19, 0, tzinfo=UTC), 60 * 60 * 10**6, dt.time(20, 0))
def test_ended_between_lists_exactly_the_periods_ending_in_the_window(after: dt.datetime, micros: int,
                                                                      ends_at: dt.time) -> None:
    cal = Daily("UTC", ends_at)
    until = after + dt.timedelta(microseconds=micros)
    got = list(cal.ended_between(after, until))
    # brute force: every day around the window, kept when after < its end <= until
    first = after.date() - dt.timedelta(days=2)
    candidates = [cal.period_of_day(first + dt.timedelta(days=i)) for i in range((until.date() - first).days + 3)]
    assert got == [p for p in candidates if after < p.end <= until]
    assert [p.end for p in got] == sorted(p.end for p in got)
    for p in got:
        assert cal.day(p.end - dt.timedelta(microseconds=1)).isoformat() == p.key
        assert cal.day(p.end).isoformat() != p.key  # the end moment starts the next day


def test_accrual_day_by_hand() -> None:
    cal = Daily("UTC", dt.time(20, 0))
    assert cal.day(dt.datetime(2026, 3, 10, 19, 59, 59, 999999, tzinfo=UTC)) == dt.date(2026, 3, 10)
    assert cal.day(dt.datetime(2026, 3, 10, 20, 0, tzinfo=UTC)) == dt.date(2026, 3, 11)
    # 22:00 in Istanbul (UTC+3) is 19:00 UTC: still the 10th
    assert cal.day(dt.datetime(2026, 3, 10, 22, 0, tzinfo=ZoneInfo("Europe/Istanbul"))) == dt.date(2026, 3, 10)
    p = cal.period_of_day(dt.date(2026, 3, 1))
    assert (p.start, p.end, p.key) == (dt.datetime(2026, 2, 28, 20, tzinfo=UTC),
                                       dt.datetime(2026, 3, 1, 20, tzinfo=UTC), "2026-03-01")
    # default Daily (no ends_at) keeps the T-day: [00:00, 24:00) local, due at the next midnight
    t = Daily("Europe/Istanbul")
    q = t.period_of_day(dt.date(2026, 3, 10))
    assert (q.start, q.end) == (dt.datetime(2026, 3, 9, 21, tzinfo=UTC), dt.datetime(2026, 3, 10, 21, tzinfo=UTC))
    assert t.day(dt.datetime(2026, 3, 10, 21, tzinfo=UTC)) == dt.date(2026, 3, 11)


ZONES = ["Europe/Istanbul", "UTC", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata",
         "America/Havana", "Europe/London"]


@settings(max_examples=300)
@given(moments, st.sampled_from(ZONES))
@example(dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "America/New_York")
@example(dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York")
def test_t_days_midnight_every_moment_is_in_the_period_of_its_day(moment: dt.datetime, tz: str) -> None:
    """The default (midnight) calendar keeps its contract after the ends_at change, DST zones included."""
    cal = Daily(tz)
    day = cal.day(moment)
    assert day == moment.astimezone(ZoneInfo(tz)).date()
    period = cal.period_of_day(day)
    assert period.start <= moment < period.end
    assert cal.period_of_day(day + dt.timedelta(days=1)).start == period.end


@pytest.mark.parametrize(("tz", "ends_at", "moment"), [
    # spring forward: 02:30 does not exist on 8 March 2026 in New York; 07:00Z is 03:00 EDT
    ("America/New_York", dt.time(2, 30), dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    # fall back: 01:00-02:00 happens twice on 1 November 2026; 06:00Z is the second 01:00 (EST)
    ("America/New_York", dt.time(1, 30), dt.datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
])
def test_ends_at_in_a_dst_zone_keeps_every_moment_in_the_period_of_its_day(tz: str, ends_at: dt.time,
                                                                          moment: dt.datetime) -> None:
    """Daily(tz, ends_at) with a local ends_at that a DST change skips or repeats. Not reachable with
    today's wiring (accruals use UTC, T-days use midnight), but Daily accepts any zone."""
    cal = Daily(tz, ends_at)
    period = cal.period_of_day(cal.day(moment))
    assert period.start <= moment < period.end
