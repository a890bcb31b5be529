"""Operator controls for broker rebates: ND under ``/admin/rebates``,
``/admin/users/{uid}/vip-fee-mode`` and ``/admin/brokers/{uid}/rebates``; FD brokers under
``/admin/fd-brokers`` (renderers and parsers in ``operator/rebates.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query
from pydantic import BaseModel, Field

from stakehouse.operator.rebates import (
    fd_out,
    fd_record_out,
    record_out,
    set_cap,
    set_ratio,
    set_up_fd,
    settings_out,
)
from stakehouse.wiring import Services


class RatioIn(BaseModel):
    ratio: str = Field(max_length=32, description='The share of net fees paid back, e.g. "0.4"')


class CapIn(BaseModel):
    monthlyCap: str | None = Field(None, max_length=32, description="USDT a month; null: no cap")


class VipModeIn(BaseModel):
    on: bool


class FdBrokerIn(BaseModel):
    code: str | None = Field(None, max_length=16, description="16 ASCII letters or digits; omit: keep or generate")
    types: list[str] = Field(max_length=2, description='"api" and/or "oauth"')
    ratio: str = Field(max_length=32, description='The share of a tagged fill\'s net fee paid back, e.g. "0.3"')
    clientRebateRatio: str = Field("0", max_length=32, description="The user's part of that rebate")


class ExpiredIn(BaseModel):
    expired: bool


class OnIn(BaseModel):
    on: bool


def build_rebates_admin(router: APIRouter | FastAPI, services: Services) -> None:
    r = APIRouter(tags=["admin: ND rebates"])

    @r.get("/rebates/settings")
    def get_settings() -> dict[str, Any]:
        """The rebate ratio per broker level and the monthly cap per fee level (VIP4 and above)."""
        return settings_out(services)

    @r.put("/rebates/ratios/{level}")
    def put_ratio(level: Annotated[int, Path(ge=1, le=99)], body: RatioIn) -> dict[str, str]:
        return set_ratio(services, level, body.ratio)

    @r.put("/rebates/caps/{fee_level}")
    def put_cap(fee_level: str, body: CapIn) -> dict[str, str]:
        return set_cap(services, fee_level, body.monthlyCap)

    @r.put("/users/{uid}/vip-fee-mode")
    def put_vip_mode(uid: str, body: VipModeIn) -> dict[str, Any]:
        """A sub-account in VIP fee-rate mode earns its broker no rebate (if-rebate type 3)."""
        return {"uid": uid, "on": services.rebates.set_vip_fee_mode(uid, body.on)}

    @r.get("/brokers/{uid}/rebates")
    def broker_rebates(uid: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """The broker's daily rebate records, newest first."""
        return [record_out(x) for x in services.rebates.records(uid, limit)]

    fd = APIRouter(prefix="/fd-brokers", tags=["admin: FD brokers"])

    @fd.get("")
    def fd_list() -> list[dict[str, Any]]:
        return [fd_out(b) for b in services.fd_brokers.all()]

    @fd.get("/{uid}")
    def fd_get(uid: str) -> dict[str, Any]:
        return fd_out(services.fd_brokers.get(uid))

    @fd.put("/{uid}")
    def fd_put(uid: str, body: FdBrokerIn) -> dict[str, Any]:
        """Make a master account an FD broker (or change its code, types, ratio, client ratio)."""
        return set_up_fd(services, uid, code=body.code, types=body.types, ratio=body.ratio,
                         client_ratio=body.clientRebateRatio)

    @fd.put("/{uid}/expired")
    def fd_expired(uid: str, body: ExpiredIn) -> dict[str, Any]:
        """An expired identification earns the broker nothing (if-rebate type 1) until cleared."""
        return fd_out(services.fd_brokers.set_expired(uid, body.expired))

    @fd.put("/{uid}/affiliates/{user_uid}")
    def fd_affiliate(uid: str, user_uid: str, body: OnIn) -> dict[str, Any]:
        """Link a user to the broker (invited by it: ``affiliated``), or unlink it."""
        return {"uid": uid, "user": user_uid, "affiliated": services.fd_brokers.affiliate(uid, user_uid, body.on)}

    @fd.get("/{uid}/rebates")
    def fd_rebates(uid: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """The broker's daily FD records (per user and broker type), newest first."""
        return [fd_record_out(x) for x in services.fd_brokers.records(uid, limit)]

    router.include_router(r)
    router.include_router(fd)
