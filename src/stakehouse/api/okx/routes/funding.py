"""OKX routes: an ND broker's sub-accounts' deposit addresses and deposit history (seed 004).

Master key of an enabled broker only (a sub-account's key: 59604, a master that is not a broker:
59608); a sub-account that is not the broker's: 59510. Rules in ``chain/service.py``.
"""

from __future__ import annotations

from typing import Any

from stakehouse import errors as dom
from stakehouse.api.okx.app import Call, Route
from stakehouse.api.okx.ratelimit import Limit
from stakehouse.clock import to_ms
from stakehouse.funding.deposits import DepositAddress, DepositQuery
from stakehouse.money import fmt

SUB_ACCT_MAX = 32
CHAIN_MAX = 48
ADDR_MAX = 160


def _tagged(a: DepositAddress, row: dict[str, Any]) -> dict[str, Any]:
    """``tag`` only where the chain needs one (as the document says)."""
    if a.need_tag:
        row["tag"] = a.tag
    return row


def post_create_address(call: Call) -> list[dict[str, Any]]:
    p = call.params
    sub = p.text("subAcct", required=True, max_len=SUB_ACCT_MAX)
    ccy = p.ccy(required=True)
    chain = p.text("chain", max_len=CHAIN_MAX)
    addr_type = p.optional_int("addrType", (1, 2)) or 1
    to = p.optional_int("to", (6, 18))
    a = call.services.chain.create_address(call.caller.uid, sub, ccy, chain=chain, addr_type=addr_type, to=to)
    return [_tagged(a, {"ccy": a.ccy, "addr": a.addr, "chain": a.chain, "ts": str(to_ms(a.created_at))})]


def post_modify_address(call: Call) -> list[dict[str, Any]]:
    p = call.params
    sub = p.text("subAcct", required=True, max_len=SUB_ACCT_MAX)
    ccy = p.ccy(required=True)
    chain = p.text("chain", max_len=CHAIN_MAX)
    addr = p.text("addr", required=True, max_len=ADDR_MAX)
    to = p.optional_int("to", (6, 18))
    if to is None:
        raise dom.MissingParameter("to")
    a, ts = call.services.chain.set_beneficiary(call.caller.uid, sub, ccy, addr=addr, to=to, chain=chain)
    return [{"ccy": a.ccy, "addr": a.addr, "chain": a.chain, "to": str(a.to), "tag": a.tag, "memo": "", "pmtId": "",
             "comment": "", "ts": str(to_ms(ts))}]


def get_addresses(call: Call) -> list[dict[str, Any]]:
    p = call.params
    sub = p.text("subAcct", required=True, max_len=SUB_ACCT_MAX)
    ccy = p.ccy(required=True)
    return [_tagged(a, {"addr": a.addr, "ccy": a.ccy, "chain": a.chain, "to": str(a.to), "selected": a.selected,
                        "ctAddr": ""})
            for a in call.services.chain.addresses(call.caller.uid, sub, ccy)]


def get_deposit_history(call: Call) -> list[dict[str, Any]]:
    p = call.params
    sub = p.text("subAcct", max_len=SUB_ACCT_MAX)
    query = DepositQuery(
        ccy=p.ccy(), tx_id=p.text("txId", max_len=128), type=p.optional_int("type", (3, 4)),
        state=p.optional_int("state", (0, 1, 2, 8, 11, 12, 13, 14)),
        after=p.ms_time("after"), before=p.ms_time("before"), limit=p.limit(),
    )
    return [
        {"subAcct": name, "ccy": d.ccy, "chain": d.chain, "amt": fmt(d.amt),
         # only an internal sender (a user of the platform) is shown, never a chain address
         "from": d.from_uid if d.type == 3 else "", "areaCodeFrom": "", "to": d.to_addr, "txId": d.tx_id,
         "ts": str(to_ms(d.created_at)), "state": str(d.state), "depId": d.dep_id,
         "actualDepBlkConfirm": str(d.confirmations)}
        for name, d in call.services.chain.broker_deposit_history(call.caller.uid, sub, query)
    ]


ROUTES: list[Route] = [
    Route("POST", "/asset/broker/nd/subaccount-deposit-address", post_create_address, "trade", Limit(10, 1, "uid")),
    Route("POST", "/asset/broker/nd/modify-subaccount-deposit-address", post_modify_address, "trade",
          Limit(6, 1, "uid")),
    Route("GET", "/asset/broker/nd/subaccount-deposit-address", get_addresses, "read", Limit(6, 1, "uid")),
    Route("GET", "/asset/broker/nd/subaccount-deposit-history", get_deposit_history, "read", Limit(5, 2, "uid")),
]
