"""Operator controls for chains and the sandbox chain simulator's deposits (seed 004).

``GET /admin/chains``, ``PUT /admin/chains/{chain}`` (confirmations, fee, limits, block time,
deposit/withdrawal switches), ``POST /admin/chain/deposits`` (send an on-chain deposit to one of
our deposit addresses), ``GET /admin/chain/deposits/{depId}``, ``GET /admin/chain/addresses/{addr}``.
The renderers and parsers here are shared with the CLI (``cli_chain.py``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stakehouse import errors as dom
from stakehouse.assets.reference import Chain
from stakehouse.assets.service import Deposit
from stakehouse.chain.service import DepositAddress, SendDeposit
from stakehouse.clock import to_ms
from stakehouse.money import AmountError, fmt, parse_amount
from stakehouse.services import Services

#: wire name -> ``Chain`` field (what ``PUT /admin/chains/{chain}`` may change)
CHAIN_FIELDS = {"confirmations": "confirmations", "unlockConfirmations": "unlock_confirmations", "fee": "fee",
                "minDep": "min_dep", "minWd": "min_wd", "maxWd": "max_wd", "blockSeconds": "block_seconds",
                "canDep": "can_dep", "canWd": "can_wd"}
MONEY_FIELDS = ("fee", "minDep", "minWd", "maxWd")


class ChainIn(BaseModel):
    """Only the fields given change; the result is validated as a whole."""

    confirmations: int | None = Field(None, description="confirmations to credit a deposit, 1..10000")
    unlockConfirmations: int | None = Field(None, description="confirmations to succeed, >= confirmations")
    fee: str | None = Field(None, max_length=80, description="withdrawal fee in the currency, >= 0")
    minDep: str | None = Field(None, max_length=80)
    minWd: str | None = Field(None, max_length=80)
    maxWd: str | None = Field(None, max_length=80)
    blockSeconds: int | None = Field(None, description="seconds per block of the simulator, 1..86400")
    canDep: bool | None = None
    canWd: bool | None = None


class SendDepositIn(BaseModel):
    addr: str = Field(min_length=1, max_length=160, description="a deposit address (or addr:tag)")
    ccy: str = Field(min_length=1, max_length=16)
    amt: str = Field(min_length=1, max_length=80)
    chain: str = Field("", max_length=48, description="default: the currency's main chain")
    tag: str = Field("", max_length=32)
    txId: str = Field("", max_length=128, description="default: a new hash of the chain's format")
    fromAddr: str = Field("", max_length=128)


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


def require_sandbox(services: Services) -> None:
    """The simulator sends deposits only in the sandbox (production deposits come from real chains)."""
    if not services.settings.sandbox:
        raise dom.NotAllowed("The chain simulator runs only in the sandbox")


def send_request(body: SendDepositIn) -> SendDeposit:
    return SendDeposit(addr=body.addr, ccy=body.ccy.upper(), amt=parse_money("amt", body.amt), chain=body.chain,
                       tag=body.tag, tx_id=body.txId, from_addr=body.fromAddr)


def build_chain_admin(r: APIRouter, services: Services) -> None:
    """Add the chain routes to the admin router ``r``."""

    @r.get("/chains")
    def list_chains(ccy: str = "") -> list[dict[str, Any]]:
        ccys = [c.strip().upper() for c in ccy.split(",") if c.strip()]
        return [chain_out(c) for c in services.chain.chains(ccys)]

    @r.put("/chains/{chain}")
    def put_chain(chain: str, body: ChainIn) -> dict[str, Any]:
        return chain_out(services.chain.configure_chain(chain, chain_changes(body.model_dump())))

    @r.post("/chain/deposits")
    def send_deposit(body: SendDepositIn) -> dict[str, Any]:
        """Send an on-chain deposit (sandbox simulator): state 0, credited and successful as the
        clock advances past its confirmations."""
        require_sandbox(services)
        return chain_deposit_out(services.chain.send_deposit(send_request(body)))

    @r.get("/chain/deposits/{dep_id}")
    def get_deposit(dep_id: str) -> dict[str, Any]:
        return chain_deposit_out(services.chain.deposit(dep_id))

    @r.get("/chain/addresses/{addr}")
    def find_address(addr: str, tag: str = "", chain: str = "") -> list[dict[str, Any]]:
        return [address_out(a) for a in services.chain.find_addresses(addr, tag=tag, chain=chain)]
