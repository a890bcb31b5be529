"""The DCD rule book as pure functions (``../shared/spec/dcd.md`` §1, §2, §4): what an order pays
at expiry, the products a series lists, their times and ids, and the checks on a quote's size.
The option pricing is ``pricing_rules.py``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from stakehouse.money import ZERO, round_down

#: Products are listed, expire and settle at 08:00 UTC.
LIST_HOUR = 8
SETTLE_AFTER = dt.timedelta(hours=2)
DEFAULT_STOP_BEFORE = dt.timedelta(hours=1)
OPT_TYPES = ("C", "P")


class DcdReason(StrEnum):
    """Why a DCD request is refused (each adapter maps these to its codes)."""

    NOT_SUB_ACCOUNT = "not_sub_account"
    TRADING_STOPPED = "trading_stopped"
    QUOTA = "quota"
    BELOW_MIN = "below_min"
    ABOVE_MAX = "above_max"
    CL_REQ_ID_TAKEN = "cl_req_id_taken"
    CL_ORD_ID_TAKEN = "cl_ord_id_taken"
    QUOTE_MISSING = "quote_missing"
    QUOTE_USED = "quote_used"
    QUOTE_EXPIRED = "quote_expired"
    ORDER_MISSING = "order_missing"


@dataclass(frozen=True)
class Payout:
    """What a settled order pays: ``amount`` of ``ccy``, its yield in the notional currency."""

    amount: Decimal
    ccy: str
    yield_amt: Decimal


def settlement(opt_type: str, notional: Decimal, abs_yield: Decimal, stk: Decimal, sett_price: Decimal, *,
               ccy: str, alt_ccy: str, scales: dict[str, int]) -> Payout:
    """§1: a call (notional in ``ccy``) pays ``notional x (1 + absYield) x stk`` in ``alt_ccy`` when the
    settlement price is at or above the strike, else ``notional x (1 + absYield)`` in ``ccy``; a put
    (notional in ``alt_ccy``) pays ``notional x (1 + absYield) / stk`` in ``ccy`` at or below the
    strike, else ``notional x (1 + absYield)`` in ``alt_ccy``. Rounded down to the paid currency's
    precision (``scales``); the yield to the notional currency's."""
    grown = notional * (1 + abs_yield)
    notional_ccy = ccy if opt_type == "C" else alt_ccy
    yield_amt = round_down(notional * abs_yield, scales[notional_ccy])
    if opt_type == "C":
        if sett_price >= stk:
            return Payout(round_down(grown * stk, scales[alt_ccy]), alt_ccy, yield_amt)
        return Payout(round_down(grown, scales[ccy]), ccy, yield_amt)
    if opt_type != "P":
        raise ValueError(f"optType {opt_type}")
    if sett_price <= stk:
        return Payout(round_down(grown / stk, scales[ccy]), ccy, yield_amt)
    return Payout(round_down(grown, scales[alt_ccy]), alt_ccy, yield_amt)


def listing_boundary(now: dt.datetime) -> dt.datetime:
    """The last 08:00 UTC at or before ``now``: the listing moment whose products are on sale."""
    today = now.astimezone(dt.UTC).replace(hour=LIST_HOUR, minute=0, second=0, microsecond=0)
    return today if today <= now else today - dt.timedelta(days=1)


def interest_accrual_time(now: dt.datetime) -> dt.datetime:
    """The next whole hour after ``now`` (interest accrues from there)."""
    return now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


def strike(spot: Decimal, pct: Decimal, tick: Decimal) -> Decimal:
    """``spot x (1 + pct/100)`` rounded to the nearest multiple of ``tick`` (halves up)."""
    raw = spot * (1 + pct / 100) / tick
    return (raw + Decimal("0.5")).to_integral_value(rounding="ROUND_FLOOR") * tick


def ladder(spot: Decimal, pcts: list[Decimal], tick: Decimal) -> list[tuple[str, Decimal]]:
    """The (optType, strike) pairs a series lists: calls at the offsets above spot (sell high),
    puts at those below (buy low); a strike that rounds onto or across spot is left out."""
    out = []
    for pct in pcts:
        k = strike(spot, pct, tick)
        if pct > 0 and k > spot:
            out.append(("C", k))
        elif pct < 0 and ZERO < k < spot:
            out.append(("P", k))
    return sorted(set(out))


def product_id(ccy: str, alt_ccy: str, expiry: dt.datetime, stk: Decimal, opt_type: str) -> str:
    """``BTC-USDT-230512-29500-C``."""
    return f"{ccy}-{alt_ccy}-{expiry:%y%m%d}-{stk.normalize():f}-{opt_type}"


def parse_list(text: str, *, integers: bool = False) -> list[Decimal]:
    """A comma-separated list of numbers (a series' tenors or strike offsets); ``ValueError``."""
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = Decimal(part)
        except ArithmeticError:
            raise ValueError(f"not a number: {part!r}") from None
        if not value.is_finite() or (integers and (value != value.to_integral_value() or value <= 0)):
            raise ValueError(f"not {'a positive whole number' if integers else 'a number'}: {part!r}")
        out.append(value)
    if not out:
        raise ValueError("empty")
    return out


def size_problem(notional: Decimal, min_size: Decimal, max_size: Decimal, step: Decimal) -> str | None:
    """Why a quote's notional is refused (below the minimum, above the maximum, off the step), or
    ``None``."""
    if notional < min_size:
        return f"at least {min_size.normalize():f}"
    if notional > max_size:
        return f"at most {max_size.normalize():f}"
    if (notional / step) != (notional / step).to_integral_value():
        return f"a multiple of {step.normalize():f}"
    return None
