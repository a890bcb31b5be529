"""The ND broker rebate rule book as pure functions (``../shared/spec/trading-and-rebates.md`` §5).

A fill of an ND broker's sub-account earns the broker ``ratio * netFee + markupFee`` (both in
USDT: the base fee and the markup the sub-account paid in money, not by contract credits), rounded
down to 8 decimals. A day's records sum the fills; a sub-account in VIP fee-rate mode earns
nothing; one at VIP4 or above earns at most its level's monthly cap.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from stakehouse.money import ZERO, round_down

#: Rebates are rounded down to this many decimals (USDT) [decision].
REBATE_SCALE = 8
DEFAULT_RATIO = Decimal("0.4")
#: Fee levels from which a monthly cap may apply (OKX: "VIP4 and above").
CAPPED_LEVELS = ("VIP4", "VIP5", "VIP6", "VIP7", "VIP8")
HKT = dt.timezone(dt.timedelta(hours=8))
_YYYYMMDD = re.compile(r"^[0-9]{8}$")


class RebateReason(StrEnum):
    """Why a rebate request is refused (each adapter maps these to its codes)."""

    NOT_OWN_SUB_ACCOUNT = "not_own_sub_account"
    API_KEY_MISSING = "api_key_missing"


def fill_rebate(ratio: Decimal, net_fee: Decimal, markup_fee: Decimal) -> Decimal:
    """One fill's rebate: ``ratio * netFee + markupFee``, rounded down to 8 decimals (a markup below
    the base, a discount, is negative and lowers it; the result may be negative)."""
    return round_down(ratio * net_fee + markup_fee, REBATE_SCALE)


@dataclass(frozen=True)
class FillFees:
    uid: str
    net_fee: Decimal
    markup_fee: Decimal


@dataclass(frozen=True)
class DayRecord:
    """One sub-account's day: its rebate (``income``) and the fees it was earned from."""

    uid: str
    income: Decimal
    net_fee: Decimal
    markup_fee: Decimal


def day_records(fills: Iterable[FillFees], ratio: Decimal) -> list[DayRecord]:
    """Per sub-account, the sums of its fills' rebates and fees, in uid order."""
    sums: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
    for f in fills:
        income, net, markup = sums.get(f.uid, (ZERO, ZERO, ZERO))
        sums[f.uid] = (income + fill_rebate(ratio, f.net_fee, f.markup_fee), net + f.net_fee, markup + f.markup_fee)
    return [DayRecord(uid, *sums[uid]) for uid in sorted(sums)]


def capped(income: Decimal, month_so_far: Decimal, cap: Decimal | None) -> Decimal:
    """A day's income under a monthly cap: what is left of the cap this month, never below zero
    (no cap: the income unchanged)."""
    if cap is None or income <= 0:
        return income
    return max(min(income, cap - month_so_far), ZERO)


def parse_day(text: str, field: str) -> dt.date:
    """A ``YYYYMMDD`` date parameter (ASCII digits, a real calendar day); ``ValueError`` naming why."""
    if not _YYYYMMDD.fullmatch(text):
        raise ValueError(f"{field}: format YYYYMMDD")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"{field}: not a calendar date") from None


def hkt_day(at: dt.datetime) -> dt.date:
    return at.astimezone(HKT).date()


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)
