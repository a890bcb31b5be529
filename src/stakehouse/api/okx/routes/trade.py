"""Spot orders and fills (``trade/*``) and the ND sub-account's contract credits.

Placing and canceling answer order-style results (conventions §3.2): one item per order with its
own ``sCode``/``sMsg`` for what the market refuses; a whole-request defect (bad JSON, a 21st
order, a malformed or missing parameter of any order) is a top-level code and places nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.api.okx.app import Call, OrderResults, Route
from stakehouse.api.okx.errors import OkxError, bad, from_domain
from stakehouse.api.okx.params import Params
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.digits import ascii_digits
from stakehouse.money import fmt
from stakehouse.trading import rules
from stakehouse.trading.credits import STATES as CREDIT_STATES
from stakehouse.trading.credits import Credit
from stakehouse.trading.service import Fill, FillQuery, Order, OrderQuery, PlaceRequest

_CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_TAG = re.compile(r"^[A-Za-z0-9]{1,16}$")
_INST_ID = re.compile(r"^[A-Za-z0-9]{1,16}-[A-Za-z0-9]{1,16}$")
#: Order ids, trade ids and bill ids are digit strings of at most this many digits.
ID_DIGITS = 19
#: How far back each history route reaches.
HISTORY_7D = dt.timedelta(days=7)
ARCHIVE_3M = dt.timedelta(days=92)
FILLS_3D = dt.timedelta(days=3)


def _micros(call: Call) -> str:
    return str(to_ms(call.services.clock.now()) * 1000)


def _inst_id(p: Params, *, required: bool = True) -> str:
    return p.text("instId", required=required, max_len=33, pattern=_INST_ID).upper()


def _id(p: Params, name: str) -> int | None:
    text = p.text(name, max_len=ID_DIGITS + 1)
    if not text:
        return None
    if not ascii_digits(text, ID_DIGITS):
        raise bad(name, "a digit string")
    return int(text)


def _spot(p: Params, *, required: bool = False) -> bool:
    """Whether the query is for spot (or for every type): only spot is traded here, so the other
    types have no orders and no fills (as ``public/instruments`` lists none of them)."""
    inst_type = p.choice("instType", ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"), required=required)
    return inst_type in ("", "SPOT")


def _price(p: Params, name: str, call: Call) -> Decimal | None:
    if not p.has(name):
        return None
    return p.amount(name, max_amount=call.services.settings.max_amount)


def _request(p: Params, call: Call) -> PlaceRequest:
    inst_id = _inst_id(p)
    td_mode = p.choice("tdMode", rules.TD_MODES, required=True)
    side = p.choice("side", rules.SIDES, required=True)
    ord_type = p.choice("ordType", rules.ORDER_TYPES, required=True)
    sz = p.amount("sz", max_amount=call.services.settings.max_amount)
    px = _price(p, "px", call)
    if ord_type != "market" and px is None:
        raise dom.MissingParameter("px")
    tgt_ccy = p.choice("tgtCcy", rules.TARGET_CCYS)
    cl_ord_id = p.text("clOrdId", max_len=32, pattern=_CL_ORD_ID)
    tag = p.text("tag", max_len=16, pattern=_TAG)
    auth = call.caller
    return PlaceRequest(inst_id=inst_id, td_mode=td_mode, side=side, ord_type=ord_type, sz=sz,
                        px=px if ord_type != "market" else None, tgt_ccy=tgt_ccy, cl_ord_id=cl_ord_id, tag=tag,
                        auth="oauth" if auth.client_id else "api",
                        api_key=auth.key.api_key if auth.key is not None else auth.client_id)


def _failure(err: OkxError, p: Params) -> dict[str, str]:
    """An order's item when the market refuses it."""
    return {"ordId": "", "clOrdId": str(p.values.get("clOrdId", ""))[:32], "tag": str(p.values.get("tag", ""))[:16],
            "ts": "", "sCode": err.code, "sMsg": err.msg}


def _as_okx(exc: dom.DomainError) -> OkxError:
    if isinstance(exc, dom.InsufficientBalance):
        return OkxError("51008", param0=exc.ccy)
    return from_domain(exc)


def _place_one(call: Call, p: Params, req: PlaceRequest) -> dict[str, str]:
    try:
        order = call.services.trading.place(call.caller.uid, req)
    except dom.DomainError as exc:
        return _failure(_as_okx(exc), p)
    return {"ordId": str(order.ord_id), "clOrdId": order.cl_ord_id, "tag": order.tag,
            "ts": str(to_ms(order.created_at)), "sCode": "0", "sMsg": "Order placed"}


def post_order(call: Call) -> OrderResults:
    """One order. A malformed or missing parameter refuses the request (50014/51000, HTTP 400);
    the rules of the market answer in the order's item (``sCode``)."""
    in_time = _micros(call)
    req = _request(call.params, call)
    item = _place_one(call, call.params, req)
    return OrderResults([{**item, "inTime": in_time, "outTime": _micros(call)}])


def _batch(call: Call) -> list[Params]:
    items = call.params.items if call.params.items is not None else [call.params]
    if len(items) > rules.MAX_BATCH:
        raise OkxError("51111", param0=str(rules.MAX_BATCH))
    return items


def post_batch_orders(call: Call) -> OrderResults:
    """Up to 20 orders, each in its own transaction: every order's parameters are read first (one
    malformed refuses the whole request, nothing placed), then each is placed and answered alone."""
    in_time = _micros(call)
    batch = _batch(call)
    requests = [_request(p, call) for p in batch]
    items = [_place_one(call, p, req) for p, req in zip(batch, requests, strict=True)]
    out = _micros(call)
    return OrderResults([{**item, "inTime": in_time, "outTime": out} for item in items])


def _cancel_one(call: Call, p: Params) -> dict[str, str]:
    try:
        inst_id = _inst_id(p)
        ord_id = _id(p, "ordId")
        cl_ord_id = p.text("clOrdId", max_len=32, pattern=_CL_ORD_ID)
        if ord_id is None and not cl_ord_id:
            raise OkxError("50015", param0="ordId", param1="clOrdId")
        order = call.services.trading.cancel(call.caller.uid, inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id)
    except (OkxError, dom.DomainError) as exc:
        failure = exc if isinstance(exc, OkxError) else _as_okx(exc)
        return {"ordId": str(p.values.get("ordId", ""))[:20], "clOrdId": str(p.values.get("clOrdId", ""))[:32],
                "ts": "", "sCode": failure.code, "sMsg": failure.msg}
    return {"ordId": str(order.ord_id), "clOrdId": order.cl_ord_id, "ts": str(to_ms(order.updated_at)), "sCode": "0",
            "sMsg": ""}


def post_cancel_order(call: Call) -> OrderResults:
    return OrderResults([_cancel_one(call, call.params)])


def post_cancel_batch_orders(call: Call) -> OrderResults:
    return OrderResults([_cancel_one(call, p) for p in _batch(call)])


_STATE_OUT = {"live": "live", "filled": "filled", "canceled": "canceled"}


def order_out(o: Order) -> dict[str, Any]:
    f = o.fill
    return {
        "instType": "SPOT", "instId": o.inst_id, "ordId": str(o.ord_id), "clOrdId": o.cl_ord_id, "tag": o.tag,
        "px": fmt(o.px) if o.px is not None else "", "sz": fmt(o.sz), "ordType": o.ord_type, "side": o.side,
        "posSide": "net", "tdMode": o.td_mode, "tgtCcy": o.tgt_ccy if o.ord_type == "market" else "",
        "accFillSz": fmt(o.acc_fill_sz), "avgPx": fmt(o.avg_px) if o.avg_px is not None else "",
        "fillPx": fmt(f.fill_px) if f else "", "fillSz": fmt(f.fill_sz) if f else "",
        "fillTime": str(to_ms(f.ts)) if f else "", "tradeId": str(f.trade_id) if f else "",
        "state": _STATE_OUT[o.state], "fee": fmt(-o.fee) if o.fee else "0", "feeCcy": o.fee_ccy,
        "rebate": "0", "rebateCcy": o.fee_ccy, "pnl": "0", "category": "normal", "lever": "", "ccy": "",
        "source": "", "cancelSource": "", "cancelSourceReason": "", "reduceOnly": "false", "quickMgnType": "",
        "stpId": "", "stpMode": "", "attachAlgoClOrdId": "", "algoClOrdId": "", "algoId": "", "isTpLimit": "false",
        "slOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "", "tpOrdPx": "", "tpTriggerPx": "",
        "tpTriggerPxType": "", "attachAlgoOrds": [], "linkedAlgoOrd": {"algoId": ""},
        "cTime": str(to_ms(o.created_at)), "uTime": str(to_ms(o.updated_at)),
    }


def fill_out(f: Fill) -> dict[str, Any]:
    ts = str(to_ms(f.ts))
    return {
        "instType": "SPOT", "instId": f.inst_id, "tradeId": str(f.trade_id), "ordId": str(f.ord_id),
        "clOrdId": f.cl_ord_id, "billId": str(f.trade_id), "subType": "1" if f.side == "buy" else "2", "tag": f.tag,
        "fillPx": fmt(f.fill_px), "fillSz": fmt(f.fill_sz), "fillIdxPx": fmt(f.idx_px), "fillPnl": "0",
        "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": "", "side": f.side,
        "posSide": "net", "execType": f.exec_type, "feeCcy": f.fee_ccy, "fee": fmt(-f.fee) if f.fee else "0",
        "feeRate": fmt(-f.fee_rate) if f.fee_rate else "0", "ts": ts, "fillTime": ts,
    }


def _lookup(call: Call) -> tuple[str, int | None, str]:
    p = call.params
    inst_id = _inst_id(p)
    ord_id = _id(p, "ordId")
    cl_ord_id = p.text("clOrdId", max_len=32, pattern=_CL_ORD_ID)
    if ord_id is None and not cl_ord_id:
        raise OkxError("50015", param0="ordId", param1="clOrdId")
    return inst_id, ord_id, cl_ord_id


def get_order(call: Call) -> list[dict[str, Any]]:
    inst_id, ord_id, cl_ord_id = _lookup(call)
    return [order_out(call.services.trading.order(call.caller.uid, inst_id, ord_id=ord_id, cl_ord_id=cl_ord_id))]


def _order_query(call: Call) -> OrderQuery:
    p = call.params
    return OrderQuery(inst_id=_inst_id(p, required=False), ord_type=p.choice("ordType", rules.ORDER_TYPES),
                      state=p.choice("state", ("live", "partially_filled", "filled", "canceled")),
                      after=_id(p, "after"), before=_id(p, "before"), begin=p.ms_time("begin"), end=p.ms_time("end"),
                      limit=p.limit())


def get_orders_pending(call: Call) -> list[dict[str, Any]]:
    spot = _spot(call.params)
    query = _order_query(call)
    return [order_out(o) for o in call.services.trading.orders(call.caller.uid, query, live=True)] if spot else []


def _history(call: Call, back: dt.timedelta, *, type_required: bool) -> list[dict[str, Any]]:
    spot = _spot(call.params, required=type_required)
    query = _order_query(call)
    if not spot:
        return []
    since = call.services.clock.now() - back
    return [order_out(o) for o in call.services.trading.orders(call.caller.uid, query, live=False, since=since)]


def get_orders_history(call: Call) -> list[dict[str, Any]]:
    return _history(call, HISTORY_7D, type_required=True)


def get_orders_history_archive(call: Call) -> list[dict[str, Any]]:
    return _history(call, ARCHIVE_3M, type_required=True)


def _fills(call: Call, back: dt.timedelta, *, type_required: bool) -> list[dict[str, Any]]:
    p = call.params
    spot = _spot(p, required=type_required)
    query = FillQuery(inst_id=_inst_id(p, required=False), ord_id=_id(p, "ordId"), after=_id(p, "after"),
                      before=_id(p, "before"), begin=p.ms_time("begin"), end=p.ms_time("end"), limit=p.limit())
    if not spot:
        return []
    since = call.services.clock.now() - back
    return [fill_out(f) for f in call.services.trading.fills(call.caller.uid, query, since=since)]


def get_fills(call: Call) -> list[dict[str, Any]]:
    return _fills(call, FILLS_3D, type_required=False)


def get_fills_history(call: Call) -> list[dict[str, Any]]:
    return _fills(call, ARCHIVE_3M, type_required=True)


# -- contract credits (ND sub-accounts) -------------------------------------------------------


def credit_out(c: Credit) -> dict[str, str]:
    return {"creditId": str(c.credit_id), "ccy": c.ccy, "amt": fmt(c.amt), "state": c.state,
            "activateExpTime": str(to_ms(c.activate_exp_at)),
            "useExpTime": str(to_ms(c.use_exp_at)) if c.use_exp_at else "",
            "invalidTime": str(to_ms(c.invalid_at)) if c.invalid_at else "", "validPeriod": str(c.valid_period_ms)}


def get_credits(call: Call) -> list[dict[str, str]]:
    p = call.params
    state = p.choice("state", CREDIT_STATES)
    limit = p.limit(default=10, hi=200)
    return [credit_out(c) for c in call.services.credits.list(call.caller.uid, state=state, limit=limit)]


def post_activate_credit(call: Call) -> list[dict[str, bool]]:
    credit_id = _id(call.params, "creditId")
    if credit_id is None:
        raise dom.MissingParameter("creditId")
    call.services.credits.activate(call.caller.uid, credit_id)
    return [{"result": True}]


ROUTES = [
    Route("POST", "/trade/order", post_order, "trade", Limit(60, 2, "uid+instId")),
    Route("POST", "/trade/batch-orders", post_batch_orders, "trade", Limit(300, 2, "uid"), batch=True),
    Route("POST", "/trade/cancel-order", post_cancel_order, "trade", Limit(60, 2, "uid+instId")),
    Route("POST", "/trade/cancel-batch-orders", post_cancel_batch_orders, "trade", Limit(300, 2, "uid"), batch=True),
    Route("GET", "/trade/order", get_order, "read", Limit(60, 2, "uid+instId")),
    Route("GET", "/trade/orders-pending", get_orders_pending, "read", Limit(60, 2, "uid")),
    Route("GET", "/trade/orders-history", get_orders_history, "read", Limit(40, 2, "uid")),
    Route("GET", "/trade/orders-history-archive", get_orders_history_archive, "read", Limit(20, 2, "uid")),
    Route("GET", "/trade/fills", get_fills, "read", Limit(60, 2, "uid")),
    Route("GET", "/trade/fills-history", get_fills_history, "read", Limit(10, 2, "uid")),
    Route("GET", "/broker/nd/credits", get_credits, "read", Limit(5, 2, "uid")),
    Route("POST", "/broker/nd/activate-credit", post_activate_credit, "trade", Limit(5, 2, "uid")),
]
