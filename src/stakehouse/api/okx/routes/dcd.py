"""OKX routes: dual-currency deposits (seed 004: "Get DCD products" to "Get DCD orders").
``products`` is public (per IP: ccxt calls it unsigned); the others take an ND broker's
sub-account key (50030 otherwise)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.errors import bad
from stakehouse.api.okx.params import Params
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.dcd.rules import OPT_TYPES
from stakehouse.dcd.service import IndicativeQuote, Order, OrderQuery, QuoteRequest
from stakehouse.digits import ascii_digits
from stakehouse.money import fmt

_TAG = re.compile(r"^[A-Za-z0-9]{1,16}$")
_CCY = re.compile(r"^[A-Za-z0-9]{1,16}$")
_PRODUCT = re.compile(r"^[A-Za-z0-9.\-]{1,48}$")
_FRACTION = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,8})?$")
STATES = ("initial", "live", "pending_settled", "settled", "rejected")
#: Insufficient funds for a subscription: the finance code (spec dcd §4, "51008-style").
OVERRIDES: dict[type[dom.DomainError], str] = {dom.InsufficientBalance: "51736"}


def _ms(moment: Any) -> str:
    return str(to_ms(moment)) if moment is not None else ""


def get_products(call: Call) -> list[dict[str, str]]:
    p = call.params
    ccy = p.text("ccy", required=True, pattern=_CCY).upper()
    alt = p.text("alternativeCcy", required=True, pattern=_CCY).upper()
    opt_type = p.choice("optType", OPT_TYPES, required=True)
    tag = p.text("tag", required=True, pattern=_TAG)
    return [product_out(q, tag) for q in call.services.dcd.products(ccy, alt, opt_type)]


def product_out(q: IndicativeQuote, tag: str) -> dict[str, str]:
    x = q.product
    return {"absYield": fmt(q.yields.abs), "altCcy": x.alt_ccy, "alternativeCcy": x.alt_ccy,
            "annualYield": fmt(q.yields.annual), "ccy": x.ccy, "expTime": _ms(x.exp_time),
            "interestAccrualTime": _ms(q.yields.accrual_time), "listTime": _ms(x.list_time),
            "maxSize": fmt(x.max_size), "minSize": fmt(x.min_size), "notionalCcy": x.notional_ccy,
            "optType": x.opt_type, "productId": x.product_id, "quota": fmt(x.quota_left),
            "quoteTime": _ms(q.quote_time), "settTime": _ms(x.sett_time), "stopTradingTime": _ms(x.stop_trading_time),
            "stepSize": fmt(x.step_size), "stk": fmt(x.stk), "tag": tag, "uly": x.uly}


def post_quote(call: Call) -> list[dict[str, str]]:
    p = call.params
    product_id = p.text("productId", required=True, pattern=_PRODUCT)
    notional = p.amount("notional", max_amount=call.services.settings.max_amount)
    notional_ccy = p.text("notionalCcy", required=True, pattern=_CCY).upper()
    tag = p.text("tag", required=True, pattern=_TAG)
    cl_req_id = p.client_id("clReqId")
    markup = _markup(p)
    q = call.services.dcd.quote(call.caller.uid, QuoteRequest(product_id, notional, notional_ccy, tag, cl_req_id,
                                                              markup))
    return [{"absYield": fmt(q.abs_yield), "annualYield": fmt(q.annual_yield), "clReqId": q.cl_req_id,
             "notional": fmt(q.notional), "notionalCcy": q.notional_ccy, "productId": q.product_id,
             "quoteId": q.quote_id, "ttlMs": str(q.ttl_ms), "tag": q.tag,
             "markUp": fmt(q.markup) if q.markup is not None else ""}]


def _markup(p: Params) -> Decimal | None:
    """``markUp``: a plain decimal with at most 8 decimals (the service checks 0 <= x < 1)."""
    text = p.text("markUp", max_len=12)
    if not text:
        return None
    if not _FRACTION.fullmatch(text):
        raise bad("markUp", "0 <= markUp < 1, at most 8 decimals")
    return Decimal(text)


def post_order(call: Call) -> dict[str, str]:
    p = call.params
    quote_id = p.text("quoteId", required=True, max_len=40)
    o = call.services.dcd.order(call.caller.uid, quote_id, p.client_id("clOrdId"))
    return {"clOrdId": o.cl_ord_id, "ordId": str(o.ord_id), "quoteId": o.quote_id}


def order_out(o: Order) -> dict[str, str]:
    x = o.product
    return {"absYield": fmt(o.abs_yield), "alternativeCcy": x.alt_ccy, "annualYield": fmt(o.annual_yield),
            "cTime": _ms(o.created_at), "ccy": x.ccy, "clOrdId": o.cl_ord_id, "notional": fmt(o.notional),
            "notionalCcy": x.notional_ccy, "optType": x.opt_type, "ordId": str(o.ord_id), "productId": x.product_id,
            "quoteId": o.quote_id, "settAmt": fmt(o.sett_amt), "settCcy": o.sett_ccy or "",
            "settPrice": fmt(o.sett_price), "settTime": _ms(x.sett_time), "settledTime": _ms(o.settled_at),
            "state": o.state, "stk": fmt(x.stk), "tag": o.tag, "uTime": _ms(o.updated_at), "uly": x.uly,
            "yieldAmt": fmt(o.yield_amt), "yieldCcy": x.notional_ccy if o.yield_amt is not None else ""}


def _ord_id(p: Params, name: str) -> int | None:
    text = p.text(name, max_len=20)
    if not text:
        return None
    if not ascii_digits(text, 19):
        raise bad(name)
    return int(text)


def get_order(call: Call) -> list[dict[str, str]]:
    p = call.params
    ord_id = _ord_id(p, "ordId")
    cl_ord_id = p.client_id("clOrdId")
    if ord_id is None and not cl_ord_id:
        raise bad("ordId", "either ordId or clOrdId is required")
    return [order_out(call.services.dcd.get_order(call.caller.uid, ord_id=ord_id, cl_ord_id=cl_ord_id))]


def get_orders(call: Call) -> list[dict[str, str]]:
    p = call.params
    query = OrderQuery(product_id=p.text("productId", pattern=_PRODUCT), uly=p.text("uly", max_len=32),
                       state=p.choice("state", STATES), begin_id=_ord_id(p, "beginId"), end_id=_ord_id(p, "endId"),
                       begin=p.ms_time("begin"), end=p.ms_time("end"), limit=p.limit())
    return [order_out(o) for o in call.services.dcd.orders(call.caller.uid, query)]


ROUTES = [
    Route("GET", "/finance/sfp/dcd/products", get_products, None, Limit(30, 2, "ip")),
    Route("POST", "/finance/sfp/dcd/quote", post_quote, "trade", Limit(2, 2, "uid"), OVERRIDES),
    Route("POST", "/finance/sfp/dcd/order", post_order, "trade", Limit(2, 2, "uid"), OVERRIDES),
    Route("GET", "/finance/sfp/dcd/order", get_order, "read", Limit(10, 2, "uid")),
    Route("GET", "/finance/sfp/dcd/orders", get_orders, "read", Limit(10, 2, "uid")),
]
