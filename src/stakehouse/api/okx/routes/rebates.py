"""OKX routes: ND broker rebates (seed 004: "Get daily rebate records", "Get the user's broker
rebate information"). Master key of an enabled broker only (59604, 59608)."""

from __future__ import annotations

from typing import Any

from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.errors import bad
from stakehouse.api.okx.params import Params
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.digits import ascii_digits
from stakehouse.money import fmt
from stakehouse.rebates import rules
from stakehouse.rebates.service import Record, RecordQuery


def _day(p: Params, name: str) -> str:
    text = p.text(name, max_len=8)
    if text:
        try:
            rules.parse_day(text, name)
        except ValueError as exc:
            raise bad(name, str(exc).split(": ", 1)[1]) from None
    return text


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
]
