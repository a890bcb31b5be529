"""Operator controls for ND rebates under ``/admin/rebates``, ``/admin/users/{uid}/vip-fee-mode``
and ``/admin/brokers/{uid}/rebates`` (renderers and parsers in ``operator/rebates.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query
from pydantic import BaseModel, Field

from stakehouse.operator.rebates import record_out, set_cap, set_ratio, settings_out
from stakehouse.wiring import Services


class RatioIn(BaseModel):
    ratio: str = Field(max_length=32, description='The share of net fees paid back, e.g. "0.4"')


class CapIn(BaseModel):
    monthlyCap: str | None = Field(None, max_length=32, description="USDT a month; null: no cap")


class VipModeIn(BaseModel):
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

    router.include_router(r)
