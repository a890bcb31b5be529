"""Operator controls for chains and the sandbox chain simulator's deposits (seed 004).

``GET /admin/chains``, ``PUT /admin/chains/{chain}`` (confirmations, fee, limits, block time,
deposit/withdrawal switches), ``POST /admin/chain/deposits`` (send an on-chain deposit to one of
our deposit addresses), ``GET /admin/chain/deposits/{depId}``, ``GET /admin/chain/addresses/{addr}``.
The renderers and parsers here are shared with the CLI (``cli_chain.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stakehouse.funding.deposits import SendDeposit
from stakehouse.operator.funding import address_out, chain_changes, chain_deposit_out, chain_out, parse_money
from stakehouse.wiring import Services


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
        return chain_deposit_out(services.chain.send_deposit(send_request(body)))

    @r.get("/chain/deposits/{dep_id}")
    def get_deposit(dep_id: str) -> dict[str, Any]:
        return chain_deposit_out(services.chain.deposit(dep_id))

    @r.get("/chain/addresses/{addr}")
    def find_address(addr: str, tag: str = "", chain: str = "") -> list[dict[str, Any]]:
        return [address_out(a) for a in services.chain.find_addresses(addr, tag=tag, chain=chain)]
