"""The broker rebate rule book as pure functions (``../shared/spec/trading-and-rebates.md`` §5-7).

ND: a fill of an ND broker's sub-account earns the broker ``ratio * netFee + markupFee`` (both in
USDT: the base fee and the markup the sub-account paid in money, not by contract credits), rounded
down to 8 decimals. A day's records sum the fills; a sub-account in VIP fee-rate mode earns
nothing; one at VIP4 or above earns at most its level's monthly cap.

FD: a fill tagged with an FD broker's code earns ``ratio * netFee`` rounded down to 8 decimals, of
which the user gets ``clientRebateRatio`` (rounded down) and the broker the rest. Nothing for an
expired broker or a user above VIP5; VIP4/VIP5 users are capped monthly like ND sub-accounts.

A day whose total is cut (cap, VIP mode, a negative sum) is spread back over its fills in time
order (:func:`allocate`), so a detail file's rows always add up to the day's record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
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


#: FD users above this level earn their broker nothing (if-rebate type 3).
FD_TOP_LEVELS = ("VIP6", "VIP7", "VIP8")
#: Detail files cover at most this many days (59615).
MAX_FILE_DAYS = 180
FD_TYPES = ("api", "oauth")
_CODE = re.compile(r"^[0-9A-Za-z]{16}$")


class RebateReason(StrEnum):
    """Why a rebate request is refused (each adapter maps these to its codes)."""

    NOT_OWN_SUB_ACCOUNT = "not_own_sub_account"
    API_KEY_MISSING = "api_key_missing"
    NOT_FD_BROKER = "not_fd_broker"
    RANGE_TOO_LONG = "range_too_long"
    END_BEFORE_BEGIN = "end_before_begin"
    FILE_TOO_SOON = "file_too_soon"


def fill_rebate(ratio: Decimal, net_fee: Decimal, markup_fee: Decimal) -> Decimal:
    """One fill's rebate: ``ratio * netFee + markupFee``, rounded down to 8 decimals (a markup below
    the base, a discount, is negative and lowers it; the result may be negative)."""
    return round_down(ratio * net_fee + markup_fee, REBATE_SCALE)


def allocate(raws: Sequence[Decimal], target: Decimal) -> list[Decimal]:
    """The fills' share of a day's ``target`` (0 <= target): their own rebates when they add up to
    it, else ``target`` handed out in order, each fill at most its own rebate and never below zero
    (exact whenever ``target`` is at most the sum of the positive rebates, which caps and the
    zero floor guarantee)."""
    if sum(raws, ZERO) == target:
        return list(raws)
    left = target
    out = []
    for raw in raws:
        given = max(ZERO, min(raw, left))
        out.append(given)
        left -= given
    return out


def fd_fill_rebate(ratio: Decimal, net_fee: Decimal) -> Decimal:
    """One tagged fill's whole FD rebate (broker and user): ``ratio * netFee`` rounded down."""
    return round_down(ratio * net_fee, REBATE_SCALE)


def fd_split(total: Decimal, client_ratio: Decimal) -> tuple[Decimal, Decimal]:
    """(brokerRebate, userRebate) of an FD rebate: the user's share rounded down, the broker the
    rest, so the two always add up to ``total``."""
    user = round_down(total * client_ratio, REBATE_SCALE)
    return total - user, user


def fd_rebate_type(*, expired: bool, level: str, month_so_far: Decimal, cap: Decimal | None) -> str:
    """FD ``if-rebate``'s ``type``: ``1`` the broker's identification expired, ``3`` the user is
    above VIP5, ``2`` a VIP4/VIP5 user's monthly cap is reached, else ``0``."""
    if expired:
        return "1"
    if level in FD_TOP_LEVELS:
        return "3"
    if cap is not None and month_so_far >= cap:
        return "2"
    return "0"


def valid_code(code: str) -> bool:
    """An FD broker code: 16 ASCII letters or digits (the seed's ``6099c63a8d75SCDE``)."""
    return bool(_CODE.fullmatch(code))


def file_range(begin: dt.date, end: dt.date) -> RebateReason | None:
    """Why a detail file's ``[begin, end)`` is refused: empty or reversed (59616), over 180 days
    (59615); ``None`` when it is fine."""
    if end <= begin:
        return RebateReason.END_BEFORE_BEGIN
    if (end - begin).days > MAX_FILE_DAYS:
        return RebateReason.RANGE_TOO_LONG
    return None


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
