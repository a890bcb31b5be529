"""Funding account: currencies, balances, transfers, deposit history."""

from __future__ import annotations

from typing import Any

from stakehouse import errors as dom
from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.assets.service import TransferRequest
from stakehouse.clock import to_ms
from stakehouse.funding.deposits import DepositQuery
from stakehouse.ledger.rules import FUNDING
from stakehouse.money import fmt


def get_currencies(call: Call) -> list[dict[str, Any]]:
    ccys = call.params.ccy_list()
    if ccys:
        call.services.reference.require_currencies(ccys)
    return [
        {"ccy": r.ccy, "name": r.name, "chain": r.chain, "canDep": r.can_dep, "canWd": r.can_wd,
         "canInternal": r.can_internal, "minDep": fmt(r.min_dep), "minWd": fmt(r.min_wd), "maxWd": fmt(r.max_wd),
         "wdTickSz": str(r.wd_tick_sz), "fee": fmt(r.fee), "minFee": fmt(r.fee), "maxFee": fmt(r.fee),
         "mainNet": r.main_net, "needTag": r.need_tag, "minDepArrivalConfirm": str(r.confirmations),
         "minWdUnlockConfirm": str(r.unlock_confirmations), "wdQuota": "", "usedWdQuota": "", "ctAddr": "",
         "logoLink": "", "depEstOpenTime": "", "wdEstOpenTime": "", "depQuotaFixed": "", "usedDepQuotaFixed": "",
         "depQuoteDailyLayer2": "", "burningFeeRate": "", "minInternal": "", "wdAll": False}
        for r in call.services.reference.chains(ccys)
    ]


async def get_balances(call: Call) -> list[dict[str, str]]:
    ccys = call.params.ccy_list()
    if ccys:
        call.services.reference.require_currencies(ccys)
    out = []
    for b in await call.services.assets.read_balances(call.caller.uid, FUNDING, ccys):
        total = b.total
        if total > 0:
            out.append({"ccy": b.ccy, "bal": fmt(total), "frozenBal": fmt(b.locked), "availBal": fmt(b.available)})
    return out


def post_transfer(call: Call) -> list[dict[str, str]]:
    p = call.params
    ccy = p.ccy(required=True)
    amt = p.amount("amt", max_amount=call.services.settings.max_amount, zero_code="58114")
    from_type = p.optional_int("from", (6, 18))
    to_type = p.optional_int("to", (6, 18))
    if from_type is None:
        raise dom.MissingParameter("from")
    if to_type is None:
        raise dom.MissingParameter("to")
    kind = p.optional_int("type", (0, 1, 2, 3, 4))
    req = TransferRequest(ccy=ccy, amt=amt, from_type=from_type, to_type=to_type, type=kind or 0,
                          sub_acct=p.text("subAcct", max_len=32), client_id=p.client_id())
    t = call.services.assets.transfer(call.caller.uid, req)
    return [{"transId": t.trans_id, "clientId": t.client_id, "ccy": t.ccy, "from": str(t.from_type),
             "amt": fmt(t.amt), "to": str(t.to_type), "subAcct": t.sub_acct}]


def get_transfer_state(call: Call) -> list[dict[str, str]]:
    p = call.params
    trans_id = p.text("transId", max_len=20)
    client_id = p.client_id()
    if not trans_id and not client_id:
        raise dom.MissingParameter("transId")
    p.optional_int("type", (0, 1, 2, 3, 4))
    try:
        t = call.services.assets.transfer_state(call.caller.uid, trans_id=trans_id, client_id=client_id)
    except dom.NotFound:
        return []
    return [{"transId": t.trans_id, "clientId": t.client_id, "ccy": t.ccy, "amt": fmt(t.amt), "type": str(t.type),
             "from": str(t.from_type), "to": str(t.to_type), "subAcct": t.sub_acct, "instId": "", "toInstId": "",
             "state": t.state}]


def get_deposit_history(call: Call) -> list[dict[str, Any]]:
    p = call.params
    query = DepositQuery(
        ccy=p.ccy(), dep_id=p.text("depId", max_len=20), from_wd_id=p.text("fromWdId", max_len=20),
        tx_id=p.text("txId", max_len=128), type=p.optional_int("type", (3, 4)),
        state=p.optional_int("state", (0, 1, 2, 8, 11, 12, 13, 14, 17)),
        after=p.ms_time("after"), before=p.ms_time("before"), limit=p.limit(),
    )
    rows = call.services.chain.deposit_history(call.caller.uid, query)
    return [
        # an internal deposit (type 3) shows its sender's uid; an on-chain one the address given, if any
        {"ccy": d.ccy, "chain": d.chain, "amt": fmt(d.amt), "from": d.from_uid if d.type == 3 else d.from_addr,
         "areaCodeFrom": "", "to": d.to_addr,
         "txId": d.tx_id, "ts": str(to_ms(d.created_at)), "state": str(d.state), "depId": d.dep_id,
         "fromWdId": d.from_wd_id, "actualDepBlkConfirm": str(d.confirmations)}
        for d in rows
    ]


TRANSFER_ERRORS: dict[type[dom.DomainError], str] = {
    dom.InsufficientBalance: "58116",
    dom.SameAccount: "58123",
    dom.AccountFrozen: "58004",
    dom.NotFound: "58115",
    dom.TransferOutNotAllowed: "58119",
}

ROUTES = [
    Route("GET", "/asset/currencies", get_currencies, "read", Limit(6, 1, "uid")),
    Route("GET", "/asset/balances", get_balances, "read", Limit(6, 1, "uid")),
    Route("POST", "/asset/transfer", post_transfer, "trade", Limit(2, 1, "uid+ccy"), TRANSFER_ERRORS),
    Route("GET", "/asset/transfer-state", get_transfer_state, "read", Limit(10, 1, "uid")),
    Route("GET", "/asset/deposit-history", get_deposit_history, "read", Limit(6, 1, "uid")),
]
