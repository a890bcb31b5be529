"""The spot market's rule book as pure functions (``../shared/spec/trading-and-rebates.md`` §2-§4).
No I/O, no clock.

The platform is the counterparty at the index price. An order either fills at once and fully as
taker (market orders, and limit, ``ioc`` and ``fok`` orders whose price the index already meets),
rests as maker until the index path crosses its price (``limit`` and ``post_only``), is refused
(a ``post_only`` that would cross) or is canceled unfilled (``ioc``/``fok`` that cannot fill).

Amounts: base sizes are multiples of the instrument's lot size; quote amounts are rounded to the
quote currency's precision, always in the platform's favour (what the user pays up, what the user
receives down); fees are rounded **up** to the received currency's precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from stakehouse.money import ZERO

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "post_only", "ioc", "fok")
#: Trade modes OKX knows; only ``cash`` (spot) is served, the others are refused with 51010.
TD_MODES = ("cash", "isolated", "cross", "spot_isolated")
TARGET_CCYS = ("base_ccy", "quote_ccy")
LEVELS = ("Lv1", *(f"VIP{n}" for n in range(1, 9)))
MAX_BATCH = 20
STATES = ("live", "filled", "canceled")


class TradingReason(StrEnum):
    """Why an order, a cancel or a credit is refused (each adapter maps these to its codes)."""

    UNKNOWN_INSTRUMENT = "unknown_instrument"
    INSTRUMENT_SUSPENDED = "instrument_suspended"
    TD_MODE = "td_mode"
    BELOW_MIN_SIZE = "below_min_size"
    LOT_SIZE = "lot_size"
    TICK_SIZE = "tick_size"
    ABOVE_MAX_SIZE = "above_max_size"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    DUPLICATE_CL_ORD_ID = "duplicate_cl_ord_id"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    ORDER_MISSING = "order_missing"
    ORDER_CLOSED = "order_closed"
    NO_PRICE = "no_price"
    STALE_PRICE = "stale_price"
    CREDIT_NOT_ACTIVATABLE = "credit_not_activatable"
    NOT_ND_SUB_ACCOUNT = "not_nd_sub_account"
    ORDER_CAP = "order_cap"


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded up to a multiple of ``step``."""
    return ((value / step).to_integral_value(ROUND_CEILING) * step).normalize() + ZERO


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step``."""
    return ((value / step).to_integral_value(ROUND_FLOOR) * step).normalize() + ZERO


def unit(scale: int) -> Decimal:
    """The smallest amount of a currency with ``scale`` decimals (``Decimal('0.01')`` for 2)."""
    return Decimal(1).scaleb(-scale)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (value / step) == (value / step).to_integral_value()


@dataclass(frozen=True)
class InstrumentRules:
    inst_id: str
    base_ccy: str
    quote_ccy: str
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    max_sz: Decimal
    base_scale: int
    quote_scale: int


@dataclass(frozen=True)
class OrderSpec:
    """A validated order as the user asked for it. ``sz`` is in the quote currency only for a
    market order with ``tgt_ccy == "quote_ccy"``; base units otherwise."""

    side: str
    ord_type: str
    sz: Decimal
    px: Decimal | None
    tgt_ccy: str

    @property
    def in_quote(self) -> bool:
        return self.ord_type == "market" and self.tgt_ccy == "quote_ccy"


def default_tgt_ccy(side: str, ord_type: str) -> str:
    """OKX's default: a market buy's size is what it spends (quote), everything else base."""
    return "quote_ccy" if side == "buy" and ord_type == "market" else "base_ccy"


def check_order(spec: OrderSpec, inst: InstrumentRules) -> TradingReason | None:
    """The instrument's rules on an order's size and price (none: it may be placed)."""
    if spec.px is not None and not is_multiple(spec.px, inst.tick_sz):
        return TradingReason.TICK_SIZE
    if spec.in_quote:
        if spec.sz != spec.sz.quantize(unit(inst.quote_scale), rounding=ROUND_FLOOR):
            return TradingReason.LOT_SIZE
        return None
    if spec.sz < inst.min_sz:
        return TradingReason.BELOW_MIN_SIZE
    if not is_multiple(spec.sz, inst.lot_sz):
        return TradingReason.LOT_SIZE
    if spec.sz > inst.max_sz:
        return TradingReason.ABOVE_MAX_SIZE
    return None


def lock_for(spec: OrderSpec, inst: InstrumentRules, index: Decimal) -> tuple[str, Decimal]:
    """What placing the order locks in the trading account: (currency, amount). A buy locks the
    quote it may spend (a market buy in base units: at the index, rounded up), a sell the base."""
    if spec.side == "sell":
        if spec.in_quote:
            return inst.base_ccy, ceil_to(spec.sz / index, inst.lot_sz)
        return inst.base_ccy, spec.sz
    if spec.in_quote:
        return inst.quote_ccy, spec.sz
    px = spec.px if spec.px is not None and spec.ord_type != "market" else index
    return inst.quote_ccy, ceil_to(spec.sz * px, unit(inst.quote_scale))


class Decision(StrEnum):
    FILL = "fill"  # fills now, as taker, at the index
    REST = "rest"  # rests as maker at its own price
    REJECT = "reject"  # a post-only that would cross: refused, nothing placed
    CANCEL = "cancel"  # ioc / fok that cannot fill now: placed and canceled unfilled


def marketable(side: str, px: Decimal, index: Decimal) -> bool:
    """A limit price the index already meets (a buy at or above it, a sell at or below)."""
    return index <= px if side == "buy" else index >= px


def decide(spec: OrderSpec, index: Decimal) -> Decision:
    if spec.ord_type == "market":
        return Decision.FILL
    assert spec.px is not None
    crosses = marketable(spec.side, spec.px, index)
    if spec.ord_type == "post_only":
        return Decision.REJECT if crosses else Decision.REST
    if crosses:
        return Decision.FILL
    return Decision.REST if spec.ord_type == "limit" else Decision.CANCEL


def crossed(side: str, px: Decimal, low: Decimal, high: Decimal) -> bool:
    """Whether a minute of the index path (its low and high) crosses a resting order's price."""
    return low <= px if side == "buy" else high >= px


@dataclass(frozen=True)
class Trade:
    """The money of one fill before fees: base size, quote amount, and what the user gives and gets."""

    fill_px: Decimal
    fill_sz: Decimal  # base
    quote_amt: Decimal
    pay_ccy: str
    pay: Decimal
    get_ccy: str
    get: Decimal


def trade(spec: OrderSpec, inst: InstrumentRules, fill_px: Decimal, locked: Decimal) -> Trade | None:
    """The fill of an order at ``fill_px`` with ``locked`` held for it; ``None`` when the size it
    buys or sells is below the lot (a tiny quote-sized market order)."""
    q = unit(inst.quote_scale)
    if spec.side == "buy":
        base = floor_to(spec.sz / fill_px, inst.lot_sz) if spec.in_quote else spec.sz
        if base <= 0:
            return None
        cost = ceil_to(base * fill_px, q)
        if cost > locked:  # a quote-sized buy: never spend more than was asked for
            cost = locked
        return Trade(fill_px, base, cost, inst.quote_ccy, cost, inst.base_ccy, base)
    base = locked if spec.in_quote else spec.sz
    proceeds = floor_to(base * fill_px, q)
    if base <= 0 or proceeds <= 0:
        return None
    return Trade(fill_px, base, proceeds, inst.base_ccy, base, inst.quote_ccy, proceeds)


@dataclass(frozen=True)
class Fee:
    """A fill's fee in the received currency: ``total = base + markup`` (``markup`` below zero is
    a broker's discount), of which ``credit`` is paid by contract credits and the rest in money."""

    rate: Decimal
    base_rate: Decimal
    total: Decimal
    base: Decimal
    markup: Decimal
    credit: Decimal

    @property
    def money(self) -> Decimal:
        return self.total - self.credit


def fee_split(received: Decimal, *, rate: Decimal, base_rate: Decimal, scale: int) -> tuple[Decimal, Decimal, Decimal]:
    """(total, base fee, markup) of a fill receiving ``received``: the total at the effective rate
    and the base fee at the level's rate, each rounded up to ``scale`` decimals; the markup is the
    difference, so total = base + markup exactly. Never more than what is received."""
    u = unit(scale)
    total = min(ceil_to(received * rate, u), received)
    base = min(ceil_to(received * base_rate, u), received)
    return total, base, total - base


def paid_in_money(base_fee: Decimal, markup: Decimal, credit_fee: Decimal) -> tuple[Decimal, Decimal]:
    """(base fee, markup) of a fill paid in money when contract credits paid ``credit_fee`` of it:
    credits take the base fee first, then the markup (spec 5's ``netFee`` and ``markupFee``)."""
    credit_base = min(credit_fee, base_fee)
    return base_fee - credit_base, markup - (credit_fee - credit_base)


def credit_cover(fee: Decimal, fee_value: Decimal, remaining: Decimal, px: Decimal, scale: int
                 ) -> tuple[Decimal, Decimal]:
    """How much of a fee a credit pays: (part of the fee in its currency, credit used in the
    credit's currency). ``fee_value`` is the fee's value in the credit's currency, ``px`` the
    price of one unit of the fee currency in the credit's currency. A credit that covers the whole
    fee pays it; a smaller one pays what it can (rounded down) and is used up."""
    if fee <= 0 or remaining <= 0:
        return ZERO, ZERO
    if remaining >= fee_value:
        return fee, fee_value
    part = floor_to(remaining / px, unit(scale))
    return min(part, fee), remaining
