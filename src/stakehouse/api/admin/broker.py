"""Operator controls for non-disclosed brokers, under ``/admin/brokers`` and
``/admin/users/{uid}/fee-rate``: mark a master account as broker and set its level, its
maximum-sub-account override and whether it is enabled; list brokers and their sub-accounts;
read the fee-change history and "which change applied at time t". The renderers and the time
parser here are shared with the CLI (``stakehouse broker``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stakehouse.clock import to_ms
from stakehouse.operator.broker import broker_out, lookup_out, parse_at, setting_out, sub_out
from stakehouse.wiring import Services


class BrokerIn(BaseModel):
    level: int | None = Field(None, ge=1, le=5, description="Broker level 1..5 (lv1 when first marked)")
    maxSubAcctQty: int | None = Field(None, ge=0, le=1_000_000,
                                      description="Override of the level's maximum number of sub-accounts")
    clearMaxSubAcctQty: bool = Field(False, description="Drop the override: the level's figure applies again")
    enabled: bool | None = None


# -- parsing and rendering (shared with the CLI) -------------------------------------------------


def build_broker_admin(r: APIRouter, services: Services) -> None:
    """Add the broker routes to the admin router ``r``."""
    broker = services.broker

    @r.put("/brokers/{uid}")
    def put_broker(uid: str, body: BrokerIn) -> dict[str, Any]:
        """Mark a master account as ND broker (lv1 unless given), or change its level, its
        maximum-sub-account override or whether it is enabled (fields left out stay)."""
        broker.set_broker(uid, level=body.level, max_sub_accts=body.maxSubAcctQty,
                          clear_max=body.clearMaxSubAcctQty, enabled=body.enabled)
        return broker_out(broker.get_broker(uid))

    @r.get("/brokers")
    def list_brokers() -> list[dict[str, Any]]:
        return [broker_out(b) for b in broker.list_brokers()]

    @r.get("/brokers/{uid}")
    def get_broker(uid: str) -> dict[str, Any]:
        return broker_out(broker.get_broker(uid))

    @r.get("/brokers/{uid}/sub-accounts")
    def broker_subs(uid: str, includeDeleted: bool = False) -> list[dict[str, Any]]:
        return [sub_out(s) for s in broker.all_subs(uid, include_deleted=includeDeleted)]

    @r.get("/brokers/{uid}/fee-rates")
    def fee_history(uid: str) -> list[dict[str, Any]]:
        """Every fee change the broker set, oldest first."""
        broker.get_broker(uid)
        return [setting_out(s) for s in broker.fee_history(uid)]

    @r.get("/users/{uid}/fee-rate")
    def fee_rate(uid: str, instType: str = "SPOT", quoteCcyType: str = "", mgnType: str = "",
                 at: str = "") -> dict[str, Any]:
        """The fee changes that apply to a sub-account at ``at`` (ms or ISO 8601; default now) and
        the effective taker and maker rates."""
        return lookup_out(broker.fee_rate_at(uid, inst_type=instType, quote_ccy_type=quoteCcyType,
                                             mgn_type=mgnType, at=parse_at(at)))

    @r.get("/users/{uid}/reported-ips")
    def reported_ips(uid: str) -> list[dict[str, str]]:
        services.accounts.get(uid)
        return [{"ip": ip, "kind": kind, "ts": str(to_ms(at))} for ip, kind, at in broker.reported_ips(uid)]
