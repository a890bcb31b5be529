"""OKX routes: broker rebates (seed 004: "Get daily rebate records", both "rebate-per-orders"
pairs, both "Get the user's broker rebate information"). Master key of an enabled ND broker (the
``nd`` routes) or of an FD broker (the ``fd`` routes) only (59604, 59608)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.errors import OkxError, bad
from stakehouse.api.okx.params import Params
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.digits import ascii_digits
from stakehouse.money import fmt
from stakehouse.rebates import rules
from stakehouse.rebates.service import Record, RecordQuery


def _date(p: Params, name: str, *, required: bool = False) -> dt.date | None:
    """A ``YYYYMMDD`` parameter (51000 when it is not one; 50014 when required and absent)."""
    text = p.text(name, required=required, max_len=8)
    if not text:
        return None
    try:
        return rules.parse_day(text, name)
    except ValueError as exc:
        raise bad(name, str(exc).split(": ", 1)[1]) from None


def _day(p: Params, name: str) -> str:
    day = _date(p, name)
    return f"{day:%Y%m%d}" if day is not None else ""


def _broker_type(call: Call, kind: str) -> str:
    return call.params.choice("brokerType", rules.FD_TYPES) if kind == "fd" else ""


def request_file(kind: str) -> Callable[[Call], list[dict[str, str]]]:
    """``POST broker/{nd,fd}/rebate-per-orders``: ask for a detail file of ``[begin, end)``."""

    def handler(call: Call) -> list[dict[str, str]]:
        p = call.params
        begin, end = _date(p, "begin", required=True), _date(p, "end", required=True)
        assert begin is not None and end is not None
        existed, first = call.services.rebate_files.request(call.caller.uid, kind, begin, end,
                                                            _broker_type(call, kind))
        return [{"result": "true" if existed else "false", "ts": str(to_ms(first))}]

    return handler


def list_files(kind: str) -> Callable[[Call], list[dict[str, str]]]:
    """``GET broker/{nd,fd}/rebate-per-orders``: the broker's files (``type=true``: all;
    ``false``: those within ``begin``..``end``), finished ones with a fresh signed link."""

    def handler(call: Call) -> list[dict[str, str]]:
        p = call.params
        every = p.choice("type", ("true", "false"), required=True) == "true"
        begin = end = None
        if not every:
            begin, end = _date(p, "begin", required=True), _date(p, "end", required=True)
            assert begin is not None and end is not None
            if end <= begin:
                raise OkxError("59616")
        got = call.services.rebate_files.files(call.caller.uid, kind, call.base_url, begin=begin, end=end,
                                               broker_type=_broker_type(call, kind))
        return [{"fileHref": f.href, "beginTime": str(to_ms(f.begin_time)), "endTime": str(to_ms(f.end_time)),
                 "cTime": str(to_ms(f.requested_at)), "ts": str(to_ms(f.finished_at)) if f.finished_at else "",
                 "state": f.state} for f in got]

    return handler


def get_fd_if_rebate(call: Call) -> list[dict[str, Any]]:
    p = call.params
    info = call.services.fd_brokers.if_rebate(call.caller.uid, api_key=p.text("apiKey", required=True, max_len=64),
                                              broker_type=_broker_type(call, "fd"))
    # ``affiliated`` is a JSON boolean, as in the seed's response example
    return [{"affiliated": info.affiliated, "brokerCode": info.code, "type": info.type,
             "clientRebateRatio": fmt(info.client_ratio),
             "lastRebate": fmt(info.last_rebate) if info.last_rebate is not None else ""}]


def _neg(value: Any) -> str:
    """Fees are reported negative, as in the seed's example (a discount would show positive)."""
    return fmt(-value) if value else "0"


def record_out(r: Record) -> dict[str, Any]:
    income = fmt(r.income)
    return {"subAcct": r.sub_acct, "income": income, "incomeCat": {"spot": income, "derivative": "0", "convert": "0"},
            "netFee": fmt(r.net_fee), "netFeeCat": {"spot": fmt(r.net_fee), "derivative": "0"},
            "markupFee": _neg(r.markup_fee), "markupFeeCat": {"spot": _neg(r.markup_fee), "derivative": "0",
                                                              "convert": "0"},
            "rebateDate": r.rebate_date, "rebateTime": str(to_ms(r.rebate_time))}


def get_rebate_daily(call: Call) -> list[dict[str, Any]]:
    p = call.params
    begin, end = _day(p, "begin"), _day(p, "end")
    if begin and end and end <= begin:
        raise bad("end", "must be after begin")
    begin_time, end_time = p.ms_time("beginTime"), p.ms_time("endTime")
    page_text = p.text("page", max_len=10)
    if page_text and not ascii_digits(page_text, 9):
        raise bad("page")
    query = RecordQuery(sub_acct=p.text("subAcct", max_len=32), begin=begin, end=end, begin_time=begin_time,
                        end_time=end_time, page=p.integer("page", lo=1, hi=10**9, default=1), limit=p.limit())
    got = call.services.rebates.daily(call.caller.uid, query)
    total = fmt(got.total_income)
    return [{"ts": str(to_ms(call.services.clock.now())), "totIncome": total,
             "totIncomeCat": {"spot": total, "derivative": "0", "convert": "0"}, "totPage": str(got.total_pages),
             "page": str(got.page), "details": [record_out(r) for r in got.records]}]


def get_if_rebate(call: Call) -> list[dict[str, str]]:
    p = call.params
    api_key = p.text("apiKey", max_len=64)
    uid = p.text("uid", max_len=20)
    if uid and not ascii_digits(uid, 20):
        raise bad("uid")
    sub_acct = p.text("subAcct", max_len=32)
    if not (api_key or uid or sub_acct):
        raise bad("subAcct", "one of apiKey, uid or subAcct is required")
    kind, last = call.services.rebates.if_rebate(call.caller.uid, api_key=api_key, uid=uid, sub_acct=sub_acct)
    return [{"type": kind, "lastRebate": fmt(last) if last is not None else ""}]


ROUTES = [
    Route("GET", "/broker/nd/rebate-daily", get_rebate_daily, "read", Limit(1, 10, "uid")),
    Route("GET", "/broker/nd/if-rebate", get_if_rebate, "read", Limit(5, 2, "uid")),
    Route("POST", "/broker/nd/rebate-per-orders", request_file("nd"), "read", Limit(1, 3600, "uid")),
    Route("GET", "/broker/nd/rebate-per-orders", list_files("nd"), "read", Limit(2, 60, "uid")),
    Route("POST", "/broker/fd/rebate-per-orders", request_file("fd"), "read", Limit(1, 3600, "uid")),
    Route("GET", "/broker/fd/rebate-per-orders", list_files("fd"), "read", Limit(2, 60, "uid")),
    Route("GET", "/broker/fd/if-rebate", get_fd_if_rebate, "read", Limit(2, 1, "uid")),
]
