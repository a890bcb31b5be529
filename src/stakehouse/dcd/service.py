"""Dual-currency deposits: the listed products with indicative quotes, firm quotes, orders and
their queries (an ND broker's sub-accounts only), and the operator's series and book."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, func, select

from stakehouse.accounts.service import AccountService, User
from stakehouse.assets.reference import currency
from stakehouse.clock import Clock, to_ms
from stakehouse.config import Settings
from stakehouse.db.dialect import dialect_insert, for_update
from stakehouse.db.engine import Database
from stakehouse.db.paging import newest_first_by_id
from stakehouse.db.tables import dcd_orders, dcd_products, dcd_quotes, dcd_series, instruments
from stakehouse.dcd import pricing_rules as pricing
from stakehouse.dcd import rules
from stakehouse.dcd.rules import DcdReason
from stakehouse.dcd.runs import BOOK
from stakehouse.errors import InvalidParameter, NotFound, Refused
from stakehouse.ledger.audit import money_sum
from stakehouse.ledger.journal import Ledger
from stakehouse.ledger.rules import FUNDING, AccountRef, Leg
from stakehouse.money import ZERO, round_down
from stakehouse.trading.prices import PriceService
from stakehouse.trading.service import nd_broker_of


@dataclass(frozen=True)
class Product:
    product_id: str
    ccy: str
    alt_ccy: str
    uly: str
    opt_type: str
    stk: Decimal
    notional_ccy: str
    min_size: Decimal
    max_size: Decimal
    step_size: Decimal
    quota_left: Decimal
    list_time: dt.datetime
    exp_time: dt.datetime
    sett_time: dt.datetime
    stop_trading_time: dt.datetime


@dataclass(frozen=True)
class Yields:
    raw: Decimal
    abs: Decimal
    annual: Decimal
    markup: Decimal
    accrual_time: dt.datetime


@dataclass(frozen=True)
class IndicativeQuote:
    product: Product
    yields: Yields
    quote_time: dt.datetime


@dataclass(frozen=True)
class QuoteRequest:
    product_id: str
    notional: Decimal
    notional_ccy: str
    tag: str
    cl_req_id: str = ""
    markup: Decimal | None = None


@dataclass(frozen=True)
class Quote:
    quote_id: str
    cl_req_id: str
    product_id: str
    notional: Decimal
    notional_ccy: str
    tag: str
    markup: Decimal | None
    abs_yield: Decimal
    annual_yield: Decimal
    ttl_ms: int


@dataclass(frozen=True)
class Order:
    ord_id: int
    cl_ord_id: str
    quote_id: str
    product: Product
    notional: Decimal
    abs_yield: Decimal
    annual_yield: Decimal
    tag: str
    state: str
    sett_price: Decimal | None
    sett_amt: Decimal | None
    sett_ccy: str | None
    yield_amt: Decimal | None
    created_at: dt.datetime
    updated_at: dt.datetime
    settled_at: dt.datetime | None


@dataclass(frozen=True)
class OrderQuery:
    product_id: str = ""
    uly: str = ""
    state: str = ""
    begin_id: int | None = None  # older than this ordId
    end_id: int | None = None  # newer than this ordId
    begin: dt.datetime | None = None  # cTime after
    end: dt.datetime | None = None  # cTime before
    limit: int = 100


def product_from_row(r: Row[Any]) -> Product:
    return Product(r.product_id, r.ccy, r.alt_ccy, r.uly, r.opt_type, r.stk, r.notional_ccy, r.min_size, r.max_size,
                   r.step_size, max(r.quota - r.sold, ZERO), r.list_time, r.exp_time, r.sett_time,
                   r.stop_trading_time)


def yields_at(product: Any, spot: Decimal, now: dt.datetime, markup: Decimal) -> Yields:
    """The product's yields for a subscription at ``now`` with the index at ``spot``."""
    accrual = rules.interest_accrual_time(now)
    years = pricing.years_between(to_ms(now), to_ms(product.exp_time))
    raw = pricing.raw_yield(product.opt_type, spot, product.stk, years, product.vol)
    absolute = pricing.abs_yield(raw, product.margin, markup)
    # raw is kept for the record at the storage scale (far out of the money it is ~1E-1000000)
    annual = pricing.annual_yield(absolute, to_ms(product.exp_time), to_ms(accrual))
    return Yields(round_down(raw, 18), absolute, annual, pricing.markup_yield(raw, product.margin, markup), accrual)


def dcd_caller(conn: Connection, user: User) -> str:
    """The ND broker of a sub-account calling a sub-account-only route (else 50030)."""
    broker = nd_broker_of(conn, user)
    if broker is None:
        raise Refused(DcdReason.NOT_SUB_ACCOUNT, "This API is only for ND brokers' sub-accounts")
    return broker


class DcdService:
    def __init__(self, db: Database, clock: Clock, settings: Settings, accounts: AccountService, prices: PriceService,
                 ledger: Ledger) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.accounts = accounts
        self.prices = prices
        self.ledger = ledger

    # -- public --------------------------------------------------------------------------------

    def products(self, ccy: str, alt_ccy: str, opt_type: str) -> list[IndicativeQuote]:
        """The products on sale (listed, before ``stopTradingTime``) with indicative quotes at the
        current index (an unknown currency: 51000; a known pair without a series: none)."""
        now = self.clock.now()
        c = dcd_products.c
        with self.db.read() as conn:
            currency(conn, ccy, "ccy")
            currency(conn, alt_ccy, "alternativeCcy")
            rows = conn.execute(select(dcd_products).where(c.ccy == ccy, c.alt_ccy == alt_ccy, c.opt_type == opt_type,
                                                           c.list_time <= now, c.stop_trading_time > now)
                                .order_by(c.exp_time, c.stk)).all()
        if not rows:
            return []
        index = rows[0].index_inst
        found = self.prices.latest([index]).get(index)
        if found is None:  # production before the first index push: nothing can be priced
            return []
        return [IndicativeQuote(product_from_row(r), yields_at(r, found.px, now, ZERO), now) for r in rows]

    # -- sub-accounts ---------------------------------------------------------------------------

    def quote(self, uid: str, req: QuoteRequest) -> Quote:
        if req.markup is not None and not (0 <= req.markup < 1 and round_down(req.markup, 8) == req.markup):
            raise InvalidParameter("markUp", "0 <= markUp < 1, at most 8 decimals")
        now = self.clock.now()
        with self.db.write() as conn:
            dcd_caller(conn, self.accounts.get_in(conn, uid))
            product = conn.execute(select(dcd_products).where(dcd_products.c.product_id == req.product_id)).first()
            if product is None or product.list_time > now:
                raise InvalidParameter("productId", "no such product")
            if req.notional_ccy != product.notional_ccy:
                raise InvalidParameter("notionalCcy", f"the product's notional currency is {product.notional_ccy}")
            self._check_size(conn, product, req.notional, now)
            if req.cl_req_id and conn.execute(select(dcd_quotes.c.quote_id).where(
                    dcd_quotes.c.uid == uid, dcd_quotes.c.cl_req_id == req.cl_req_id)).first():
                raise Refused(DcdReason.CL_REQ_ID_TAKEN, "Duplicate client request ID")
            spot = self.prices.for_order(conn, product.index_inst)
            y = yields_at(product, spot, now, req.markup or ZERO)
            quote_id = "DCDQ" + secrets.token_hex(12)
            ttl = self.settings.dcd_quote_ttl_ms
            conn.execute(dcd_quotes.insert().values(
                quote_id=quote_id, uid=uid, product_id=product.product_id, cl_req_id=req.cl_req_id,
                notional=req.notional, tag=req.tag, markup=req.markup, index_px=spot, raw_yield=y.raw,
                abs_yield=y.abs, annual_yield=y.annual, markup_yield=y.markup, created_at=now,
                expires_at=now + dt.timedelta(milliseconds=ttl), used=False))
        return Quote(quote_id, req.cl_req_id, product.product_id, req.notional, product.notional_ccy, req.tag,
                     req.markup, y.abs, y.annual, ttl)

    @staticmethod
    def _check_size(conn: Connection, product: Any, notional: Decimal, now: dt.datetime) -> None:
        if now >= product.stop_trading_time:
            raise Refused(DcdReason.TRADING_STOPPED, "Product is currently suspended for purchase")
        scale = currency(conn, product.notional_ccy).scale
        if not notional.is_finite() or notional <= 0 or round_down(notional, scale) != notional:
            raise InvalidParameter("notional", f"a positive amount with at most {scale} decimals")
        problem = rules.size_problem(notional, product.min_size, product.max_size, product.step_size)
        if problem is not None:
            if notional < product.min_size:
                raise Refused(DcdReason.BELOW_MIN, problem, minUnit=f"{product.min_size.normalize():f}",
                              ccy=product.notional_ccy)
            if notional > product.max_size:
                raise Refused(DcdReason.ABOVE_MAX, problem)
            raise InvalidParameter("notional", problem)
        if notional > product.quota - product.sold:
            raise Refused(DcdReason.QUOTA, "Sold out")

    def order(self, uid: str, quote_id: str, cl_ord_id: str = "") -> Order:
        """Execute a quote within its TTL: the notional moves from the funding account into the
        platform's DCD book, and the order is ``live``."""
        now = self.clock.now()
        with self.db.write() as conn:
            broker_uid = dcd_caller(conn, self.accounts.get_in(conn, uid))
            quote = conn.execute(for_update(conn, select(dcd_quotes).where(dcd_quotes.c.quote_id == quote_id,
                                                                          dcd_quotes.c.uid == uid))).first()
            if quote is None:
                raise Refused(DcdReason.QUOTE_MISSING, "No quote")
            if quote.used:
                raise Refused(DcdReason.QUOTE_USED, "Quote traded, please ask for quote again")
            if now >= quote.expires_at:
                raise Refused(DcdReason.QUOTE_EXPIRED, "Quote expired, please ask for quote again")
            if cl_ord_id and conn.execute(select(dcd_orders.c.ord_id).where(
                    dcd_orders.c.uid == uid, dcd_orders.c.cl_ord_id == cl_ord_id)).first():
                raise Refused(DcdReason.CL_ORD_ID_TAKEN, "Duplicate Client Order Id")
            product = conn.execute(for_update(conn, select(dcd_products).where(
                dcd_products.c.product_id == quote.product_id))).one()
            self._check_size(conn, product, quote.notional, now)
            posted = self.ledger.post(conn, type="dcd_subscribe", ref=quote_id, idempotency_key=f"dcd:order:{quote_id}",
                                      at=now, uid=uid, legs=[
                                          Leg(AccountRef.user(uid, FUNDING, product.notional_ccy), -quote.notional),
                                          Leg(AccountRef.system(BOOK, product.notional_ccy), quote.notional)])
            conn.execute(dcd_quotes.update().where(dcd_quotes.c.quote_id == quote_id).values(used=True))
            conn.execute(dcd_products.update().where(dcd_products.c.product_id == product.product_id)
                         .values(sold=product.sold + quote.notional))
            ord_id = conn.execute(dcd_orders.insert().values(
                uid=uid, broker_uid=broker_uid, quote_id=quote_id, cl_ord_id=cl_ord_id, product_id=product.product_id,
                notional=quote.notional, notional_ccy=product.notional_ccy, abs_yield=quote.abs_yield,
                annual_yield=quote.annual_yield, markup_yield=quote.markup_yield, tag=quote.tag, state="live",
                exp_time=product.exp_time, sett_time=product.sett_time, entry_id=posted.entry_id, created_at=now,
                updated_at=now).returning(dcd_orders.c.ord_id)).scalar_one()
            return self._order(conn, ord_id)

    def get_order(self, uid: str, *, ord_id: int | None = None, cl_ord_id: str = "") -> Order:
        with self.db.read() as conn:
            dcd_caller(conn, self.accounts.get_in(conn, uid))
            c = dcd_orders.c
            q = select(c.ord_id).where(c.uid == uid)
            q = q.where(c.ord_id == ord_id) if ord_id is not None else q.where(c.cl_ord_id == cl_ord_id)
            found = conn.execute(q).scalar_one_or_none()
            if found is None:
                raise Refused(DcdReason.ORDER_MISSING, "Order does not exist.")
            return self._order(conn, found)

    def orders(self, uid: str, query: OrderQuery) -> list[Order]:
        with self.db.read() as conn:
            dcd_caller(conn, self.accounts.get_in(conn, uid))
            c = dcd_orders.c
            q = select(c.ord_id).where(c.uid == uid)
            if query.product_id:
                q = q.where(c.product_id == query.product_id)
            if query.uly:
                q = q.where(c.product_id.in_(select(dcd_products.c.product_id).where(dcd_products.c.uly == query.uly)))
            if query.state:
                q = q.where(c.state == query.state)
            if query.begin is not None:
                q = q.where(c.created_at > query.begin)
            if query.end is not None:
                q = q.where(c.created_at < query.end)
            q = newest_first_by_id(q, c.ord_id, after=query.begin_id, before=query.end_id, limit=query.limit)
            return [self._order(conn, i) for i in conn.execute(q).scalars()]

    @staticmethod
    def _order(conn: Connection, ord_id: int) -> Order:
        r = conn.execute(select(dcd_orders, *[col for col in dcd_products.c if col.name not in dcd_orders.c])
                         .join(dcd_products, dcd_products.c.product_id == dcd_orders.c.product_id)
                         .where(dcd_orders.c.ord_id == ord_id)).one()
        return Order(r.ord_id, r.cl_ord_id, r.quote_id, product_from_row(r), r.notional, r.abs_yield, r.annual_yield,
                     r.tag, r.state, r.sett_price, r.sett_amt, r.sett_ccy, r.yield_amt, r.created_at, r.updated_at,
                     r.settled_at)

    # -- the operator ---------------------------------------------------------------------------

    def set_series(self, ccy: str, alt_ccy: str, values: dict[str, Any]) -> dict[str, Any]:
        """Create or change the series ``ccy``/``alt_ccy`` (``values`` by column); products listed
        from the next listing on use it."""
        now = self.clock.now()
        with self.db.write() as conn:
            inst = f"{ccy}-{alt_ccy}"
            if conn.execute(select(instruments.c.inst_id).where(instruments.c.inst_id == inst)).first() is None:
                raise InvalidParameter("ccy", f"no spot market {inst} to price it")
            current = conn.execute(select(dcd_series).where(dcd_series.c.ccy == ccy,
                                                           dcd_series.c.alt_ccy == alt_ccy)).first()
            row = dict(current._mapping) if current is not None else default_series(ccy, alt_ccy)
            row.update(values)
            validate_series(row)
            row["updated_at"] = now
            conn.execute(dialect_insert(conn)(dcd_series).values(**row).on_conflict_do_update(
                index_elements=["ccy", "alt_ccy"], set_={k: v for k, v in row.items() if k not in ("ccy", "alt_ccy")}))
            return row

    def series(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(select(dcd_series).order_by(dcd_series.c.ccy))]

    def book(self) -> list[dict[str, Any]]:
        """The DCD book's exposure per product with open orders: live and pending notional."""
        c = dcd_orders.c
        with self.db.read() as conn:
            rows = conn.execute(select(c.product_id, c.state, c.notional_ccy, func.count().label("n"),
                                       money_sum(c.notional).label("notional"))
                                .where(c.state.in_(["live", "pending_settled"]))
                                .group_by(c.product_id, c.state, c.notional_ccy).order_by(c.product_id)).all()
        return [dict(r._mapping) for r in rows]

    def get_product(self, product_id: str) -> Product:
        with self.db.read() as conn:
            r = conn.execute(select(dcd_products).where(dcd_products.c.product_id == product_id)).first()
        if r is None:
            raise NotFound("DCD product", product_id)
        return product_from_row(r)


def default_series(ccy: str, alt_ccy: str) -> dict[str, Any]:
    """A new series' settings before the operator's: tenors 1, 2, 3, 7, 14 days; strikes at
    +-2, 5, 8 % of spot; sizes for a BTC-like currency (calls) and USDT (puts)."""
    return {"ccy": ccy, "alt_ccy": alt_ccy, "uly": f"{ccy}-USD", "index_inst": f"{ccy}-{alt_ccy}",
            "tenors": "1,2,3,7,14", "strike_pcts": "-8,-5,-2,2,5,8", "strike_tick": Decimal(50),
            "call_min": Decimal("0.0001"), "call_max": Decimal(200), "call_step": Decimal("0.0001"),
            "call_quota": Decimal(200), "put_min": Decimal(10), "put_max": Decimal(1_000_000),
            "put_step": Decimal(1), "put_quota": Decimal(5_000_000), "vol": Decimal("0.55"),
            "margin": Decimal("0.2"), "enabled": True}


def _wire(column: str) -> str:
    """A series column by its wire name (``strike_pcts`` -> ``strikePcts``)."""
    head, *rest = column.split("_")
    return head + "".join(part.title() for part in rest)


def validate_series(row: dict[str, Any]) -> None:
    for field, integers in (("tenors", True), ("strike_pcts", False)):
        try:
            values = rules.parse_list(str(row[field]), integers=integers)
        except ValueError as exc:
            raise InvalidParameter(_wire(field), str(exc)) from None
        if integers and any(v > 365 for v in values):
            raise InvalidParameter(_wire(field), "tenors of at most 365 days")
        if not integers and any(not -90 < v < 500 or v == 0 for v in values):
            raise InvalidParameter(_wire(field), "offsets in (-90, 500) percent, not 0")
    for field in ("strike_tick", "call_min", "call_max", "call_step", "call_quota", "put_min", "put_max", "put_step",
                  "put_quota", "vol"):
        value = row[field]
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0 or value >= 10**15:
            raise InvalidParameter(_wire(field), "a positive amount")
    if not 0 <= row["margin"] < 1:
        raise InvalidParameter("margin", "0 <= margin < 1")
    for side in ("call", "put"):
        if row[f"{side}_min"] > row[f"{side}_max"]:
            raise InvalidParameter(f"{side}Min", "at most the maximum")
