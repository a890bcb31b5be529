"""OKX routes: withdrawals (conventions 6.8, 6.9; seed 004 "Get sub-account withdrawal history").

``POST asset/withdrawal`` and ``asset/cancel-withdrawal`` (Withdraw), ``GET
asset/withdrawal-history`` (Read) and the ND broker's ``GET
asset/broker/nd/subaccount-withdrawal-history`` (Read, broker master key only).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.errors import bad
from stakehouse.api.okx.params import Params
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.funding.withdrawal_rules import STATE_FILTER
from stakehouse.funding.withdrawals import Withdrawal, WithdrawalQuery, WithdrawalRequest
from stakehouse.money import AmountError, fmt, parse_amount

MAX_ADDRESS = 160


def withdrawal_row(w: Withdrawal) -> dict[str, Any]:
    """One row of the withdrawal histories (conventions 6.9); ``tag`` only where one was used."""
    row: dict[str, Any] = {
        "ccy": w.ccy, "chain": w.chain, "amt": fmt(w.amt), "ts": str(to_ms(w.created_at)),
        "from": w.sub_name or w.uid, "areaCodeFrom": "", "to": w.to_addr, "areaCodeTo": "", "txId": w.tx_id,
        "fee": fmt(w.fee), "feeCcy": w.fee_ccy, "state": str(w.state), "wdId": w.wd_id, "clientId": w.client_id,
        "nonTradableAsset": False, "toAddrType": str(w.to_addr_type), "note": w.note,
    }
    if w.tag:
        row["tag"] = w.tag
    return row


def _fee(p: Params, call: Call) -> Decimal | None:
    if not p.has("fee"):
        return None
    try:
        return parse_amount(p.values["fee"], scale=18, max_amount=call.services.settings.max_amount, allow_zero=True)
    except AmountError as exc:
        raise bad("fee", exc.reason) from None


def post_withdrawal(call: Call) -> list[dict[str, str]]:
    p = call.params
    ccy = p.ccy(required=True)
    amt = p.amount("amt", max_amount=call.services.settings.max_amount)
    dest = p.optional_int("dest", (3, 4))
    if dest is None:
        raise dom.MissingParameter("dest")
    req = WithdrawalRequest(
        ccy=ccy, amt=amt, dest=dest, to_addr=p.text("toAddr", required=True, max_len=MAX_ADDRESS),
        chain=p.text("chain", max_len=48), area_code=p.text("areaCode", max_len=8), client_id=p.client_id(),
        to_addr_type=p.optional_int("toAddrType", (1, 2)), fee=_fee(p, call))
    w = call.services.withdrawals.withdraw(call.caller.uid, req)
    return [{"ccy": w.ccy, "chain": w.chain, "amt": fmt(w.amt), "wdId": w.wd_id, "clientId": w.client_id}]


def post_cancel(call: Call) -> list[dict[str, str]]:
    wd_id = call.params.text("wdId", required=True, max_len=20)
    w = call.services.withdrawals.cancel(call.caller.uid, wd_id)
    return [{"wdId": w.wd_id}]


def _query(p: Params) -> WithdrawalQuery:
    return WithdrawalQuery(
        ccy=p.ccy(), wd_id=p.text("wdId", max_len=20), client_id=p.client_id(), tx_id=p.text("txId", max_len=128),
        type=p.optional_int("type", (3, 4)), state=p.optional_int("state", STATE_FILTER),
        after=p.ms_time("after"), before=p.ms_time("before"), limit=p.limit())


def get_history(call: Call) -> list[dict[str, Any]]:
    rows = call.services.withdrawals.history(call.caller.uid, _query(call.params))
    return [withdrawal_row(w) for w in rows]


def get_broker_history(call: Call) -> list[dict[str, Any]]:
    p = call.params
    sub_name = p.text("subAcct", max_len=32)
    rows = call.services.withdrawals.broker_history(call.caller.uid, sub_name, _query(p))
    return [{"subAcct": w.sub_name, **withdrawal_row(w)} for w in rows]


ROUTES: list[Route] = [
    Route("POST", "/asset/withdrawal", post_withdrawal, "withdraw", Limit(6, 1, "uid")),
    Route("POST", "/asset/cancel-withdrawal", post_cancel, "withdraw", Limit(6, 1, "uid")),
    Route("GET", "/asset/withdrawal-history", get_history, "read", Limit(6, 1, "uid")),
    Route("GET", "/asset/broker/nd/subaccount-withdrawal-history", get_broker_history, "read", Limit(5, 2, "uid")),
]
