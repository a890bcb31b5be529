"""DCD option pricing as pure functions (``../shared/spec/dcd.md`` §1, §3).

The user sells the platform an option: for a call (``"C"``, notional ``N`` in the risky
currency) a call on ``N`` units at the strike ``K``; for a put (``"P"``, notional ``N`` in the
stable currency) a put on ``N / K`` units at ``K``. The premium is Black-Scholes with zero rates,
spot ``S`` (the index), time to expiry ``T`` in 365-day years and volatility ``vol``:

    d1 = (ln(S/K) + vol²·T/2) / (vol·√T),  d2 = d1 - vol·√T
    C  = S·Φ(d1) - K·Φ(d2),          P  = K·Φ(-d2) - S·Φ(-d1)

``rawYield`` is the premium over the notional value, both in the notional currency (call:
``C / S``, put: ``P / K``); ``absYield = rawYield * (1 - platform_margin) * (1 - markUp)`` and
the broker's share ``rawYield * (1 - platform_margin) * markUp`` are rounded down to 8 decimals;
``annualYield = absYield * 365 / days`` with ``days`` from the interest accrual time to expiry,
rounded half-up to 4 decimals: the seed's examples show exactly that (``0.683`` and
``1.12420000``), where 8 decimals rounded down would give 0.68299988 and 1.12419867.

Everything is :class:`~decimal.Decimal` (never ``float``), evaluated in *local* contexts; the
thread's context is never changed. Φ has full relative precision in both tails (a continued
fraction for ``erfc``), so far out-of-the-money premiums are tiny positive numbers rather than
rounding noise, and the in-the-money leg is taken through put-call parity so that ``C - P = S - K``
holds to the working precision.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from stakehouse.money import round_down

#: Scale of every yield: 8 decimals, rounded down (toward zero).
YIELD_SCALE = 8
#: Scale of the annualised yield (rounded half-up: the seed shows ``0.683`` and ``1.12420000``).
ANNUAL_SCALE = 4
#: Milliseconds in a 365-day year and in a day.
MS_PER_YEAR = 365 * 86_400 * 1000
MS_PER_DAY = 86_400 * 1000
OPT_TYPES = ("C", "P")

_TRAPS = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
#: Working precision of Φ (its result is rounded to :data:`_PREC`).
_CDF_PREC = 70
#: Precision of premiums, raw yields and year fractions.
_PREC = 50
#: The widest exponent range, so that e^(-d²/2) never underflows to zero for any finite d.
_CDF_CTX = decimal.Context(prec=_CDF_PREC, rounding=ROUND_HALF_EVEN, Emin=decimal.MIN_EMIN,
                           Emax=decimal.MAX_EMAX, traps=_TRAPS)
_CTX = decimal.Context(prec=_PREC, rounding=ROUND_HALF_EVEN, Emin=decimal.MIN_EMIN, Emax=decimal.MAX_EMAX,
                       traps=_TRAPS)
#: For products and quotients that are then rounded down: truncating at 100 significant digits and
#: then to 8 decimals is the same as truncating the exact value to 8 decimals.
_DOWN_CTX = decimal.Context(prec=100, rounding=ROUND_DOWN, Emin=decimal.MIN_EMIN, Emax=decimal.MAX_EMAX,
                            traps=_TRAPS)

_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899862803")
#: erf and erfc switch from the power series to the continued fraction at z = x/√2 = 3.
_SERIES_LIMIT = Decimal(3)
_MAX_TERMS = 10_000
_SQRT_PI = _PI.sqrt(_CDF_CTX)
_SQRT_2 = Decimal(2).sqrt(_CDF_CTX)

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)


def _erf_series(z: Decimal) -> Decimal:
    """erf(z) for 0 ≤ z ≤ 3 by the all-positive series 2/√π·e^(-z²)·Σ (2z²)ⁿ·z / (1·3·…·(2n+1))."""
    two_z2 = _TWO * z * z
    term = z
    total = z
    n = 0
    eps = Decimal(1).scaleb(-(_CDF_PREC + 5))
    while term > eps * total:
        n += 1
        if n > _MAX_TERMS:  # pragma: no cover - the series converges in well under 200 terms
            raise ArithmeticError("erf series did not converge")
        term = term * two_z2 / (2 * n + 1)
        total += term
    return _TWO / _SQRT_PI * (-(z * z)).exp() * total


def _erfc_fraction(z: Decimal) -> Decimal:
    """erfc(z) for z ≥ 3 by the even continued fraction
    2z·e^(-z²)/√π / (2z²+1 - 1·2/(2z²+5 - 3·4/(2z²+9 - …))), evaluated by modified Lentz."""
    two_z2 = _TWO * z * z
    tiny = Decimal(1).scaleb(-(_CDF_PREC * 4))
    eps = Decimal(1).scaleb(-(_CDF_PREC + 5))
    f = two_z2 + 1
    c = f
    d = _ZERO
    n = 0
    while True:
        n += 1
        if n > _MAX_TERMS:  # pragma: no cover - converges in a few hundred terms at z = 3, fewer beyond
            raise ArithmeticError("erfc continued fraction did not converge")
        a = -Decimal((2 * n - 1) * (2 * n))
        b = two_z2 + 1 + 4 * n
        d = b + a * d
        if d == 0:  # pragma: no cover - the partial denominators stay positive for z ≥ 3
            d = tiny
        c = b + a / c
        if c == 0:  # pragma: no cover
            c = tiny
        d = _ONE / d
        delta = c * d
        f *= delta
        if abs(delta - 1) <= eps:
            break
    return _TWO * z * (-(z * z)).exp() / _SQRT_PI / f


def _erfc(z: Decimal) -> Decimal:
    """erfc(z) for z ≥ 0 with full relative precision (in the current, wide context)."""
    if z < _SERIES_LIMIT:
        return _ONE - _erf_series(z)
    return _erfc_fraction(z)


def norm_cdf(x: Decimal) -> Decimal:
    """The standard normal CDF Φ(x), with 50 significant digits (absolute error far below 1e-40,
    relative error about 1e-45 even deep in either tail). ``Φ(-x) = 1 - Φ(x)`` to the last digit."""
    if x.is_nan():
        raise ValueError("norm_cdf of NaN")
    if x.is_infinite():
        return _ZERO if x < 0 else _ONE
    with decimal.localcontext(_CDF_CTX):
        z = abs(x) / _SQRT_2
        tail = _erfc(z) / _TWO  # Φ(-|x|)
        value = tail if x < 0 else _ONE - tail
    return _CTX.plus(value)


def _check_type(opt_type: str) -> None:
    if opt_type not in OPT_TYPES:
        raise ValueError(f"opt_type must be 'C' or 'P', not {opt_type!r}")


def option_premium(opt_type: str, spot: Decimal, strike: Decimal, years: Decimal, vol: Decimal) -> Decimal:
    """Black-Scholes premium (zero rates) of a call or put on one unit of the underlying, in the
    stable currency, to 50 significant digits. ``years <= 0`` or ``vol == 0``: the intrinsic value."""
    _check_type(opt_type)
    if not (spot.is_finite() and strike.is_finite() and years.is_finite() and vol.is_finite()):
        raise ValueError("option inputs must be finite")
    if spot <= 0 or strike <= 0:
        raise ValueError("spot and strike must be positive")
    if vol < 0:
        raise ValueError("volatility must not be negative")
    with decimal.localcontext(_CDF_CTX):
        if years <= 0 or vol == 0:
            intrinsic = spot - strike if opt_type == "C" else strike - spot
            return _CTX.plus(max(intrinsic, _ZERO))
        sd = vol * years.sqrt()
        d1 = ((spot / strike).ln() + sd * sd / 2) / sd
        d2 = d1 - sd
        # Price the out-of-the-money side directly (two small tails, no cancellation against 1) and
        # the in-the-money side by put-call parity, so C - P = S - K to the working precision.
        if spot <= strike:
            call = spot * norm_cdf(d1) - strike * norm_cdf(d2)
            call = max(call, _ZERO)
            premium = call if opt_type == "C" else call + strike - spot
        else:
            put = strike * norm_cdf(-d2) - spot * norm_cdf(-d1)
            put = max(put, _ZERO)
            premium = put if opt_type == "P" else put + spot - strike
    return _CTX.plus(premium)


def raw_yield(opt_type: str, spot: Decimal, strike: Decimal, years: Decimal, vol: Decimal) -> Decimal:
    """The premium over the notional value, both in the notional currency: call ``C / S`` (notional
    in the risky currency), put ``P / K`` (notional in the stable currency); 50 significant digits."""
    premium = option_premium(opt_type, spot, strike, years, vol)
    return _CTX.divide(premium, spot if opt_type == "C" else strike)


def _check_shares(platform_margin: Decimal, markup: Decimal) -> None:
    if not 0 <= platform_margin <= 1:
        raise ValueError("platform_margin must be within [0, 1]")
    if not 0 <= markup < 1:
        raise ValueError("markup must be within [0, 1)")


def abs_yield(raw: Decimal, platform_margin: Decimal, markup: Decimal) -> Decimal:
    """``raw * (1 - platform_margin) * (1 - markup)`` rounded down to 8 decimals."""
    _check_shares(platform_margin, markup)
    kept = _DOWN_CTX.multiply(_DOWN_CTX.multiply(raw, _ONE - platform_margin), _ONE - markup)
    return round_down(kept, YIELD_SCALE)


def markup_yield(raw: Decimal, platform_margin: Decimal, markup: Decimal) -> Decimal:
    """The broker's share ``raw * (1 - platform_margin) * markup`` rounded down to 8 decimals
    (the broker is paid ``notional * markup_yield`` at settlement)."""
    _check_shares(platform_margin, markup)
    share = _DOWN_CTX.multiply(_DOWN_CTX.multiply(raw, _ONE - platform_margin), markup)
    return round_down(share, YIELD_SCALE)


def annual_yield(abs_yld: Decimal, exp_ms: int, accrual_ms: int) -> Decimal:
    """``abs_yld * 365 / days`` with ``days = (exp_ms - accrual_ms) / 1 day`` (fractional), rounded
    half-up to :data:`ANNUAL_SCALE` decimals (the seed's figures); ``0`` when expiry is not after
    the accrual time. Display only: no amount is computed from it."""
    span = exp_ms - accrual_ms
    if span <= 0:
        return _ZERO
    scaled = _CTX.multiply(abs_yld, Decimal(365 * MS_PER_DAY))
    return _CTX.divide(scaled, Decimal(span)).quantize(Decimal(1).scaleb(-ANNUAL_SCALE), rounding=ROUND_HALF_UP,
                                                       context=_CTX)


def years_between(start_ms: int, end_ms: int) -> Decimal:
    """``(end - start) / 1000 / (365 * 86400)`` to 50 significant digits; ``0`` if negative."""
    span = end_ms - start_ms
    if span <= 0:
        return _ZERO
    return _CTX.divide(Decimal(span), Decimal(MS_PER_YEAR))
