"""DCD option pricing (``dcd/pricing_rules.py``, ``../shared/spec/dcd.md`` §3): Φ against ``math.erf``
and ``math.erfc``, Black-Scholes premiums against an independent float implementation, put-call
parity, monotonicity in volatility, tenor and strike, the yields (rounded down to 8 decimals, → 0
far out of the money, the broker's markup share) and the seed's annual yield."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakehouse.dcd import pricing_rules as pr

D = Decimal
EIGHT = D("0.00000001")
DAY_MS = 86_400_000

prices = st.decimals(min_value=D(100), max_value=D(100_000), places=2)
vols = st.decimals(min_value=D("0.05"), max_value=D(2), places=4)
tenor_seconds = st.integers(min_value=86_400, max_value=365 * 86_400)  # 1 day .. 1 year
opt_types = st.sampled_from(["C", "P"])
shares = st.decimals(min_value=D(0), max_value=D("0.99"), places=4)


def years(seconds: int) -> Decimal:
    return pr.years_between(0, seconds * 1000)


def float_premium(opt_type: str, s: float, k: float, t: float, vol: float) -> float:
    """Black-Scholes with zero rates in plain floats (Φ through ``erfc`` to keep the tails)."""
    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    sd = vol * math.sqrt(t)
    d1 = (math.log(s / k) + sd * sd / 2) / sd
    d2 = d1 - sd
    if opt_type == "C":
        return s * cdf(d1) - k * cdf(d2)
    return k * cdf(-d2) - s * cdf(-d1)


# --- Φ -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [i / 8 for i in range(-64, 65)])
def test_norm_cdf_matches_math_erf_on_minus_8_to_8(x: float) -> None:
    got = pr.norm_cdf(D(x))
    assert abs(float(got) - 0.5 * (1 + math.erf(x / math.sqrt(2)))) < 1e-14
    assert abs(got + pr.norm_cdf(D(-x)) - 1) < D("1e-30")


@pytest.mark.parametrize("x", [-37.5, -25.0, -12.0, -9.0, -6.5, -4.25, -3.0])
def test_norm_cdf_keeps_its_relative_precision_in_the_tail(x: float) -> None:
    ref = 0.5 * math.erfc(-x / math.sqrt(2))
    # The float reference itself is only good to about x^2 ulps out there (x / sqrt(2) is rounded).
    assert abs(float(pr.norm_cdf(D(x))) - ref) <= 1e-15 * (1 + x * x) * ref


def test_norm_cdf_fixed_points_and_limits() -> None:
    assert pr.norm_cdf(D(0)) == D("0.5")
    # Φ(1) to 40 digits (0.5 · erfc(-1/√2)).
    assert abs(pr.norm_cdf(D(1)) - D("0.8413447460685429485852325456320379224779")) < D("1e-39")
    assert pr.norm_cdf(D("-Infinity")) == 0 and pr.norm_cdf(D("Infinity")) == 1
    assert 0 < pr.norm_cdf(D(-1000)) < D("1e-217000")  # no underflow to zero
    with pytest.raises(ValueError):
        pr.norm_cdf(D("NaN"))


@given(st.decimals(min_value=D(-40), max_value=D(40), places=6))
@settings(max_examples=60)
def test_norm_cdf_symmetry_and_monotonicity(x: Decimal) -> None:
    assert abs(pr.norm_cdf(x) + pr.norm_cdf(-x) - 1) < D("1e-30")
    assert pr.norm_cdf(x) <= pr.norm_cdf(x + D("0.001"))


# --- premiums ------------------------------------------------------------------------------------

REFERENCE = [
    # (type, spot, strike, days, vol)
    ("C", "29000", "29500", 7, "0.55"),
    ("P", "29000", "28500", 7, "0.55"),
    ("C", "29000", "31320", 1, "0.55"),
    ("P", "29000", "26680", 1, "0.55"),
    ("C", "29000", "27000", 14, "0.55"),  # in the money
    ("P", "29000", "31000", 14, "0.55"),  # in the money
    ("C", "1850.25", "1850.25", 3, "0.7"),
    ("P", "1850.25", "1850.25", 3, "0.7"),
    ("C", "100000", "108000", 30, "0.3"),
    ("P", "100000", "92000", 30, "0.3"),
    ("C", "250.5", "260", 365, "1.2"),
    ("P", "250.5", "240", 365, "1.2"),
    ("C", "42000", "43000", 2, "0.05"),
    ("P", "42000", "41800", 2, "2"),
]


@pytest.mark.parametrize(("opt_type", "spot", "strike", "days", "vol"), REFERENCE)
def test_premium_matches_an_independent_float_black_scholes(opt_type: str, spot: str, strike: str, days: int,
                                                            vol: str) -> None:
    got = pr.option_premium(opt_type, D(spot), D(strike), years(days * 86_400), D(vol))
    ref = float_premium(opt_type, float(spot), float(strike), days / 365, float(vol))
    assert ref > 0
    assert abs(float(got) - ref) <= 1e-9 * ref


def test_no_time_or_no_volatility_is_the_intrinsic_value() -> None:
    s, k = D("29000"), D("29500")
    assert pr.option_premium("C", s, k, D(0), D("0.55")) == 0
    assert pr.option_premium("P", s, k, D(0), D("0.55")) == D(500)
    assert pr.option_premium("C", k, s, D("0.1"), D(0)) == D(500)
    assert pr.option_premium("P", k, s, D(-1), D("0.55")) == 0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="opt_type"):
        pr.option_premium("X", D(1), D(1), D(1), D(1))
    with pytest.raises(ValueError, match="opt_type"):
        pr.raw_yield("c", D(1), D(1), D(1), D(1))
    with pytest.raises(ValueError):
        pr.option_premium("C", D(1), D(1), D(1), D(-1))
    with pytest.raises(ValueError):
        pr.option_premium("C", D(0), D(1), D(1), D(1))
    with pytest.raises(ValueError):
        pr.abs_yield(D("0.01"), D("0.2"), D(1))
    with pytest.raises(ValueError):
        pr.markup_yield(D("0.01"), D("1.1"), D(0))


@given(prices, prices, tenor_seconds, vols)
@settings(max_examples=80)
def test_put_call_parity(spot: Decimal, strike: Decimal, seconds: int, vol: Decimal) -> None:
    t = years(seconds)
    call = pr.option_premium("C", spot, strike, t, vol)
    put = pr.option_premium("P", spot, strike, t, vol)
    assert call >= 0 and put >= 0
    assert abs(call - put - (spot - strike)) < D("1e-20")


@given(opt_types, prices, prices, tenor_seconds, vols, vols)
@settings(max_examples=60)
def test_premium_rises_with_volatility(opt_type: str, spot: Decimal, strike: Decimal, seconds: int, v1: Decimal,
                                       v2: Decimal) -> None:
    lo, hi = sorted((v1, v2))
    t = years(seconds)
    assert pr.option_premium(opt_type, spot, strike, t, lo) <= pr.option_premium(opt_type, spot, strike, t, hi)


@given(opt_types, prices, prices, tenor_seconds, tenor_seconds, vols)
@settings(max_examples=60)
def test_premium_rises_with_time(opt_type: str, spot: Decimal, strike: Decimal, s1: int, s2: int,
                                 vol: Decimal) -> None:
    short, long = sorted((s1, s2))
    assert (pr.option_premium(opt_type, spot, strike, years(short), vol)
            <= pr.option_premium(opt_type, spot, strike, years(long), vol))


@given(prices, prices, prices, tenor_seconds, vols)
@settings(max_examples=60)
def test_calls_fall_and_puts_rise_with_the_strike(spot: Decimal, k1: Decimal, k2: Decimal, seconds: int,
                                                  vol: Decimal) -> None:
    lo, hi = sorted((k1, k2))
    t = years(seconds)
    assert pr.option_premium("C", spot, lo, t, vol) >= pr.option_premium("C", spot, hi, t, vol)
    assert pr.option_premium("P", spot, lo, t, vol) <= pr.option_premium("P", spot, hi, t, vol)


def test_strictly_monotone_away_from_the_limits() -> None:
    s, k, t = D("29000"), D("29500"), years(7 * 86_400)
    assert pr.option_premium("C", s, k, t, D("0.5")) < pr.option_premium("C", s, k, t, D("0.55"))
    assert pr.option_premium("P", s, k, years(86_400), D("0.55")) < pr.option_premium("P", s, k, t, D("0.55"))
    assert pr.option_premium("C", s, k, t, D("0.55")) > pr.option_premium("C", s, k + 1, t, D("0.55"))
    assert pr.option_premium("P", s, k, t, D("0.55")) < pr.option_premium("P", s, k + 1, t, D("0.55"))


# --- yields --------------------------------------------------------------------------------------


@given(opt_types, prices, prices, tenor_seconds, vols, st.decimals(min_value=D("0.01"), max_value=D("0.5"), places=4),
       shares)
@settings(max_examples=60)
def test_yields_are_positive_and_rounded_down(opt_type: str, spot: Decimal, strike: Decimal, seconds: int,
                                              vol: Decimal, margin: Decimal, markup: Decimal) -> None:
    raw = pr.raw_yield(opt_type, spot, strike, years(seconds), vol)
    assert raw > 0
    # far out of the money raw is ~1E-1000000: check in a context that can hold it
    with decimal.localcontext(decimal.Context(prec=100, Emin=decimal.MIN_EMIN, Emax=decimal.MAX_EMAX)):
        kept = raw * (1 - margin) * (1 - markup)
        got = pr.abs_yield(raw, margin, markup)
        assert 0 <= got < raw or (got == 0 and raw > 0)
        assert got == got.quantize(EIGHT) and got <= kept < got + EIGHT
        broker = pr.markup_yield(raw, margin, markup)
        assert broker == broker.quantize(EIGHT) and broker <= raw * (1 - margin) * markup < broker + EIGHT
        assert got + broker <= raw * (1 - margin)


def test_raw_yield_is_premium_over_notional_value_in_the_notional_currency() -> None:
    s, k, t, v = D("29000"), D("29500"), years(7 * 86_400), D("0.55")
    call, put = pr.raw_yield("C", s, k, t, v), pr.raw_yield("P", s, k, t, v)
    assert abs(call - pr.option_premium("C", s, k, t, v) / s) < D("1e-45") * call
    assert abs(put - pr.option_premium("P", s, k, t, v) / k) < D("1e-45") * put


def test_far_out_of_the_money_yields_nothing() -> None:
    s, day, v = D("29000"), years(86_400), D("0.55")
    call = pr.raw_yield("C", s, 3 * s, day, v)
    put = pr.raw_yield("P", s, s / 3, day, v)
    assert 0 < call < D("1e-100") and 0 < put < D("1e-100")  # tiny but never negative noise
    assert pr.abs_yield(call, D("0.2"), D(0)) == 0 and pr.abs_yield(put, D("0.2"), D("0.05")) == 0
    # Beyond the default exponent range (about 1e-1512807): still positive, still rounds to 0.
    extreme = pr.raw_yield("C", D(100), D(100_000), day, D("0.05"))
    assert 0 < extreme < D("1e-1000000")
    assert pr.abs_yield(extreme, D("0.2"), D("0.05")) == 0 and pr.markup_yield(extreme, D("0.2"), D("0.05")) == 0


def test_margins() -> None:
    raw = D("0.0123456789")
    assert pr.abs_yield(raw, D(0), D(0)) == D("0.01234567")
    assert pr.abs_yield(raw, D("0.2"), D(0)) == D("0.00987654")  # 0.00987654312
    assert pr.abs_yield(raw, D("0.2"), D("0.05")) == D("0.00938271")  # 0.009382715964
    assert pr.markup_yield(raw, D("0.2"), D("0.05")) == D("0.00049382")  # 0.000493827156
    assert pr.markup_yield(raw, D("0.2"), D(0)) == 0
    assert pr.abs_yield(raw, D(1), D(0)) == 0


def test_the_seed_annual_yield() -> None:
    # Seed "Get DCD products": absYield 0.01302066, interestAccrualTime 1683277200000, expTime 1683878400000,
    # annualYield "0.683". 6.958333... days: 0.01302066 * 365 / 6.958333... = 0.6829998898..., which to 4
    # decimals is the seed's 0.683 (8 decimals rounded down would give 0.68299988).
    assert pr.annual_yield(D("0.01302066"), 1_683_878_400_000, 1_683_277_200_000) == D("0.683")
    # Seed "Get DCD order": absYield 0.00282333, cTime 1683193229000 (accrual from the next whole hour,
    # 1683194400000), expiry 2023-05-05 08:00 UTC: 1.12419867..., the seed's "1.12420000".
    assert pr.annual_yield(D("0.00282333"), 1_683_273_600_000, 1_683_194_400_000) == D("1.1242")


def test_annual_yield_edges() -> None:
    assert pr.annual_yield(D("0.01"), 10 * DAY_MS, 10 * DAY_MS) == 0
    assert pr.annual_yield(D("0.01"), 9 * DAY_MS, 10 * DAY_MS) == 0
    assert pr.annual_yield(D("0.01"), 365 * DAY_MS, 0) == D("0.01")
    assert pr.annual_yield(D("0.01"), 3 * DAY_MS, 0) == D("1.2167")  # 1.216666..., half up


@given(st.decimals(min_value=D(0), max_value=D(1), places=8), st.integers(min_value=1, max_value=400 * DAY_MS))
def test_annual_yield_is_rounded_half_up_to_4_decimals(abs_yld: Decimal, span: int) -> None:
    got = pr.annual_yield(abs_yld, 1_683_000_000_000 + span, 1_683_000_000_000)
    exact = abs_yld * 365 * DAY_MS / span
    assert got == got.quantize(D("0.0001")) and abs(got - exact) <= D("0.00005")


def test_years_between() -> None:
    assert pr.years_between(0, 365 * DAY_MS) == 1
    assert pr.years_between(5, 5) == 0 and pr.years_between(10, 5) == 0
    assert abs(pr.years_between(1_683_275_022_001, 1_683_878_400_000) - D(603_377_999) / D(31_536_000_000)) < D("1e-45")


def test_the_callers_decimal_context_is_left_alone() -> None:
    before = decimal.getcontext().copy()
    pr.option_premium("C", D("29000"), D("29500"), years(7 * 86_400), D("0.55"))
    pr.annual_yield(D("0.01302066"), 1_683_878_400_000, 1_683_277_200_000)
    after = decimal.getcontext()
    assert (after.prec, after.rounding, after.Emin, after.Emax) == (before.prec, before.rounding, before.Emin,
                                                                   before.Emax)
