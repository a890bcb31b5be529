"""Provider staking (Gemini-style products, staking-rules.md section 9) as pure functions.

A product is a (provider, currency) pair. Staked funds sit in the user's staking balance with
that provider; every accrual day the simple annual rate (in basis points) accrues on the day's
minimum balance and is credited into the staking balance itself, so interest compounds daily.
No I/O, no clock: the service and the daily run call these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from stakehouse.money import ZERO
from stakehouse.staking.rules import DAYS_PER_YEAR, reward


class ProviderReason(StrEnum):
    """Why a provider staking request is refused (each adapter maps these to its codes)."""

    NO_PRICE = "no_price"
    DEPOSIT_LIMIT = "deposit_limit"

#: Decimals of a provider product's amounts unless the operator says otherwise (rules 9).
DEFAULT_PRECISION = 18
UNSTAKE_MODES = ("instant", "queued")
BPS = Decimal(10_000)


@dataclass(frozen=True)
class ProviderProduct:
    """One (provider, currency) product and every *config* value."""

    provider_no: int
    provider_id: str
    ccy: str
    precision: int = DEFAULT_PRECISION
    stake_enabled: bool = True
    min_stake: Decimal = ZERO  # 0: any positive amount
    deposit_usd_limit: Decimal | None = None  # USD notional per account and calendar month (UTC)
    unstake_mode: str = "instant"  # instant | queued (through the FIFO queue with a daily cap)
    daily_redemption_cap: Decimal | None = None
    unbonding_days: int = 0


def rate_pct(rate_bps: Decimal) -> Decimal:
    """The simple annual rate in percent."""
    return rate_bps / 100


def apy_pct(rate_bps: Decimal) -> Decimal:
    """``((1 + ratePct/100/365)^365 - 1) * 100``, rounded to 2 places (gemini-staking.md 7.8)."""
    daily = rate_bps / BPS / DAYS_PER_YEAR
    apy = ((1 + daily) ** DAYS_PER_YEAR - 1) * 100
    return apy.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def daily_interest(eligible: Decimal, rate_bps: Decimal | None, precision: int) -> Decimal:
    """One day's interest: ``eligible * rate_bps / 10000 / 365``, rounded down to ``precision``."""
    if rate_bps is None:
        return ZERO
    return reward(eligible, rate_bps / BPS, ZERO, precision).net


def usd_notional(amount: Decimal, price: Decimal) -> Decimal:
    return amount * price


def deposit_allowed(used_usd: Decimal, amount: Decimal, price: Decimal, limit: Decimal | None) -> bool:
    """Whether a deposit keeps the month's USD notional within ``limit`` (``None``: unlimited)."""
    return limit is None or used_usd + usd_notional(amount, price) <= limit


def month_start(moment: dt.datetime) -> dt.datetime:
    """Start of the calendar month (UTC) holding ``moment``: the deposit limit's window."""
    utc = moment.astimezone(dt.UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


# -- rewards grouped into rate periods ---------------------------------------------------------


@dataclass(frozen=True)
class Accrual:
    at: dt.datetime
    rate_bps: Decimal
    amount: Decimal


@dataclass(frozen=True)
class RatePeriod:
    rate_bps: Decimal
    count: int
    total: Decimal
    first_at: dt.datetime
    last_at: dt.datetime


def rate_periods(accruals: Iterable[Accrual]) -> list[RatePeriod]:
    """Consecutive accruals (in time order) at the same rate merged into one period; a rate
    change opens a new one (gemini-staking.md open point 10)."""
    out: list[RatePeriod] = []
    for a in sorted(accruals, key=lambda x: x.at):
        last = out[-1] if out else None
        if last is not None and last.rate_bps == a.rate_bps:
            out[-1] = RatePeriod(last.rate_bps, last.count + 1, last.total + a.amount, last.first_at, a.at)
        else:
            out.append(RatePeriod(a.rate_bps, 1, a.amount, a.at, a.at))
    return out


# -- transaction ids ---------------------------------------------------------------------------

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SPACE = 36**8
#: Odd and not a multiple of 3, so coprime with 36^8: multiplying by it permutes the id space.
_MIX = 1_500_450_271
_UNMIX = pow(_MIX, -1, _SPACE)


def transaction_id(event_no: int) -> str:
    """The short upper-case id shown for event ``event_no`` (8 characters, like Gemini's): a
    bijection of the row number, so ids are unique without being sequential to the eye."""
    if not 0 < event_no < _SPACE:
        raise ValueError("event number out of range")
    n = event_no * _MIX % _SPACE
    chars = []
    for _ in range(8):
        n, r = divmod(n, 36)
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars))


def event_no(transaction: str) -> int | None:
    """The inverse of :func:`transaction_id` (``None`` for text that is no id)."""
    if len(transaction) != 8 or any(c not in _ALPHABET for c in transaction):
        return None
    n = 0
    for c in transaction:
        n = n * 36 + _ALPHABET.index(c)
    value = n * _UNMIX % _SPACE
    return value or None
