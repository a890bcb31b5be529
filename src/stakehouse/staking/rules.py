"""The staking rule book as pure functions (``../shared/spec/staking-rules.md``). No I/O, no clock.

Amounts are :class:`~decimal.Decimal`; every computed amount is rounded **down** to the
product's precision. The services and the daily runs call these; the PostgreSQL reward run
computes the same formulas in SQL and the test suite proves both agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from stakehouse.money import ZERO, round_down


class StakingReason(StrEnum):
    """Why a liquid staking request is refused (each adapter maps these to its codes)."""

    PURCHASE_CLOSED = "purchase_closed"
    KYC = "kyc"
    TERMS = "terms"
    SUB_ACCOUNT = "sub_account"
    BELOW_MINIMUM = "below_minimum"
    USER_QUOTA = "user_quota"
    SOLD_OUT = "sold_out"
    CANCEL_DISABLED = "cancel_disabled"
    ALREADY_COMPLETE = "already_complete"
    NOT_CANCELLABLE = "not_cancellable"

DAYS_PER_YEAR = 365
#: Rates are published with at most this many decimals (``0.02840000`` = 2.84 %).
RATE_SCALE = 8


@dataclass(frozen=True)
class ProductConfig:
    """One liquid staking product and every *config* value of the rules (section 1-5)."""

    product: str  # ETH | SOL
    staked_ccy: str  # ETH | SOL
    token_ccy: str  # BETH | OKSOL
    precision: int = 8
    purchase_enabled: bool = True
    min_purchase: Decimal = Decimal("0.01")
    total_quota: Decimal | None = None  # None = unlimited
    user_quota: Decimal | None = None
    min_redeem: Decimal = Decimal("0.00000001")
    fast_redemption_enabled: bool = True
    fast_redemption_daily_limit: Decimal = Decimal(100)
    daily_redemption_cap: Decimal | None = None
    unbonding_days: int = 5
    redeem_cancellable: bool = True
    service_fee_rate: Decimal = ZERO
    #: Lowest KYC level that counts as "KYC passed" (our choice; the rules only say "passed").
    min_kyc_level: int = 1
    #: Whether sub-accounts may stake (51735 when not).
    sub_accounts_allowed: bool = True


DEFAULT_PRODUCTS = (
    ProductConfig("ETH", "ETH", "BETH", fast_redemption_daily_limit=Decimal(100), unbonding_days=5),
    ProductConfig("SOL", "SOL", "OKSOL", fast_redemption_daily_limit=Decimal(240), unbonding_days=3),
)


# -- rewards (section 5) ----------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """The net change of one holder's free liquid tokens by one journal entry."""

    at: dt.datetime
    entry_id: int
    delta: Decimal


def eligible(opening: Decimal, moves_within_day: Iterable[Move]) -> Decimal:
    """Minimum balance over a T-day: the opening balance and the balance after each entry of the
    day, in time order (then entry order)."""
    low = balance = opening
    for move in sorted(moves_within_day, key=lambda m: (m.at, m.entry_id)):
        balance += move.delta
        low = min(low, balance)
    return max(low, ZERO)


def eligible_from_current(current: Decimal, moves_since_start: Sequence[Move], day_end: dt.datetime) -> Decimal:
    """:func:`eligible` for a day that started before every move given, from today's balance:
    the opening balance is what is held now less every move since the day started."""
    opening = current - sum((m.delta for m in moves_since_start), ZERO)
    return eligible(opening, [m for m in moves_since_start if m.at < day_end])


@dataclass(frozen=True)
class Reward:
    gross: Decimal
    net: Decimal
    fee: Decimal


def reward(eligible_amount: Decimal, rate: Decimal | None, service_fee_rate: Decimal, precision: int) -> Reward:
    """``gross = round_down(eligible * rate / 365)``, ``net = round_down(gross * (1 - fee rate))``,
    ``fee = gross - net``; nothing without a rate."""
    if rate is None or eligible_amount <= 0:
        return Reward(ZERO, ZERO, ZERO)
    gross = round_down(eligible_amount * rate / DAYS_PER_YEAR, precision)
    net = round_down(gross * (1 - service_fee_rate), precision)
    return Reward(gross, net, gross - net)


def rate_for(day: dt.date, published: dict[dt.date, Decimal]) -> Decimal | None:
    """rate(D): the rate published for D, else the most recent earlier one, else none."""
    earlier = [d for d in published if d <= day]
    return published[max(earlier)] if earlier else None


# -- redemption (section 4) -----------------------------------------------------------


def is_fast(amount: Decimal, allowance_left: Decimal, config: ProductConfig) -> bool:
    """A request is fast only if it fits whole into what is left of today's group allowance."""
    return config.fast_redemption_enabled and amount <= allowance_left


@dataclass(frozen=True)
class Scheduled:
    order_id: int
    amount: Decimal


def schedule_queue(queue: Iterable[tuple[int, Decimal]], cap: Decimal | None) -> list[Scheduled]:
    """The settlement run's FIFO pass: ``queue`` is (order id, unscheduled amount) in queue order.
    Schedules whole requests until the cap is used up, then the remaining cap from the head;
    nothing behind a partly scheduled head is taken."""
    out: list[Scheduled] = []
    left = cap
    for order_id, amount in queue:
        if amount <= 0:
            continue
        if left is None:
            out.append(Scheduled(order_id, amount))
            continue
        if left <= 0:
            break
        take = min(amount, left)
        out.append(Scheduled(order_id, take))
        left -= take
        if take < amount:
            break
    return out


def days_until_scheduled(ahead: Decimal, amount: Decimal, cap: Decimal | None) -> int:
    """How many settlement runs after today's the last part of a request is scheduled by, when
    ``ahead`` is queued before it (0 = scheduled at the end of today)."""
    if cap is None or cap <= 0:
        return 0
    runs = ((ahead + amount) / cap).to_integral_value(rounding=ROUND_CEILING)
    return max(int(runs) - 1, 0)


def estimated_completion(day: dt.date, ahead: Decimal, amount: Decimal, config: ProductConfig) -> dt.date:
    """The T-day whose settlement run (at its end) delivers the last part of a request made on
    ``day``: scheduled ``days_until_scheduled`` runs on, delivered ``unbonding_days`` after that."""
    wait = days_until_scheduled(ahead, amount, config.daily_redemption_cap)
    return day + dt.timedelta(days=wait + config.unbonding_days)


def quota_left(quota: Decimal | None, used: Decimal) -> Decimal | None:
    return None if quota is None else max(quota - used, ZERO)
