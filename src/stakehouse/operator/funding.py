"""Parsers and views of chains, deposits, deposit addresses and withdrawals for the operator's tools.

No web framework here: the admin API and the CLI both render and parse with these."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.assets.rules import Chain
from stakehouse.clock import to_ms
from stakehouse.funding.deposits import Deposit, DepositAddress
from stakehouse.funding.withdrawal_rules import STATE_FILTER
from stakehouse.funding.withdrawals import Withdrawal
from stakehouse.money import AmountError, fmt, parse_amount

#: wire name -> ``Chain`` field (what ``PUT /admin/chains/{chain}`` may change)
CHAIN_FIELDS = {"confirmations": "confirmations", "unlockConfirmations": "unlock_confirmations", "fee": "fee",
                "minDep": "min_dep", "minWd": "min_wd", "maxWd": "max_wd", "blockSeconds": "block_seconds",
                "canDep": "can_dep", "canWd": "can_wd"}
MONEY_FIELDS = ("fee", "minDep", "minWd", "maxWd")


def parse_money(field: str, text: str, *, allow_zero: bool = False) -> Decimal:
    try:
        return parse_amount(text, scale=18, max_amount=Decimal("1e30"), allow_zero=allow_zero)
    except AmountError as exc:
        raise dom.InvalidParameter(field, exc.reason) from None


def chain_changes(values: dict[str, Any]) -> dict[str, Any]:
    """Wire names and text -> ``Chain`` field names and values (money parsed strictly)."""
    out: dict[str, Any] = {}
    for wire, value in values.items():
        if value is None:
            continue
        if wire not in CHAIN_FIELDS:
            raise dom.InvalidParameter(wire, "not a chain setting")
        if wire in MONEY_FIELDS:
            value = parse_money(wire, str(value), allow_zero=wire == "fee")
        out[CHAIN_FIELDS[wire]] = value
    return out


def chain_out(c: Chain) -> dict[str, Any]:
    return {"ccy": c.ccy, "chain": c.chain, "mainNet": c.main_net, "canDep": c.can_dep, "canWd": c.can_wd,
            "canInternal": c.can_internal, "needTag": c.need_tag, "minDep": fmt(c.min_dep), "minWd": fmt(c.min_wd),
            "maxWd": fmt(c.max_wd), "wdTickSz": c.wd_tick_sz, "fee": fmt(c.fee), "confirmations": c.confirmations,
            "unlockConfirmations": c.unlock_confirmations, "blockSeconds": c.block_seconds,
            "addressFormat": c.address_format}


def iso_or_none(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def chain_deposit_out(d: Deposit) -> dict[str, Any]:
    return {"depId": d.dep_id, "uid": d.uid, "ccy": d.ccy, "chain": d.chain, "amt": fmt(d.amt), "type": str(d.type),
            "to": d.to_addr, "tag": d.tag, "from": d.from_addr, "txId": d.tx_id, "state": str(d.state),
            "confirmations": d.confirmations, "creditConfirmations": d.credit_confirmations,
            "unlockConfirmations": d.unlock_confirmations, "blockSeconds": d.block_seconds,
            "acctType": str(d.acct_type), "ts": str(to_ms(d.created_at)), "nextAt": iso_or_none(d.next_at),
            "creditedAt": iso_or_none(d.credited_at), "completedAt": iso_or_none(d.completed_at)}


def address_out(a: DepositAddress) -> dict[str, Any]:
    return {"id": str(a.id), "uid": a.uid, "ccy": a.ccy, "chain": a.chain, "addr": a.addr, "tag": a.tag,
            "addrType": str(a.addr_type), "to": str(a.to), "selected": a.selected,
            "createdAt": a.created_at.isoformat()}


def deposit_out(d: Deposit) -> dict[str, Any]:
    return {"depId": d.dep_id, "uid": d.uid, "ccy": d.ccy, "chain": d.chain, "amt": fmt(d.amt), "txId": d.tx_id,
            "state": str(d.state), "ts": str(to_ms(d.created_at))}


def withdrawal_out(w: Withdrawal) -> dict[str, Any]:
    return {"wdId": w.wd_id, "uid": w.uid, "subAcct": w.sub_name, "clientId": w.client_id, "ccy": w.ccy,
            "chain": w.chain, "amt": fmt(w.amt), "fee": fmt(w.fee), "feeCcy": w.fee_ccy, "dest": str(w.dest),
            "toAddr": w.to_addr, "tag": w.tag, "toUid": w.to_uid, "state": str(w.state), "txId": w.tx_id,
            "confirmations": w.confirmations, "requiredConfirmations": w.required_confirmations,
            "note": w.note, "ts": str(to_ms(w.created_at)), "createdAt": w.created_at.isoformat(),
            "nextAt": iso_or_none(w.next_at), "broadcastAt": iso_or_none(w.broadcast_at),
            "completedAt": iso_or_none(w.completed_at)}


def parse_state(text: str) -> int | None:
    """A withdrawal state filter (``""``: any)."""
    if not text:
        return None
    try:
        state = int(text)
    except ValueError:
        state = None
    if state not in STATE_FILTER:
        raise dom.InvalidParameter("state", f"one of {', '.join(str(s) for s in STATE_FILTER)}")
    return state
