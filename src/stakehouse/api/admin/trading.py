"""Operator controls for the spot market under ``/admin/markets``, ``/admin/fee-levels``,
``/admin/users/{uid}/fee-level`` and ``/admin/credits`` (renderers and parsers in
``operator/trading.py``, shared with the CLI)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Path, Query
from pydantic import BaseModel, Field

from stakehouse.operator.trading import (
    credit_out,
    fill_out,
    grant_credit,
    level_out,
    markets,
    set_instrument,
    set_level,
    set_path,
    set_price,
)
from stakehouse.trading.service import FillQuery
from stakehouse.wiring import Services

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class PxIn(BaseModel):
    px: str = Field(max_length=64, description='The index price now, e.g. "61234.5"')


class LevelIn(BaseModel):
    taker: str = Field(max_length=32, description='Taker rate as a fraction, e.g. "0.001" (0.1 %)')
    maker: str = Field(max_length=32, description='Maker rate as a fraction, e.g. "0.0008"')


class AccountLevelIn(BaseModel):
    level: str = Field(max_length=8, description="Lv1 or VIP1..VIP8")


class CreditIn(BaseModel):
    uid: str = Field(max_length=20, pattern=r"^[0-9]{1,20}$")
    amt: str = Field(max_length=32, description='USDT, e.g. "10"')
    activateExpTime: str = Field(max_length=16, description="Unix ms: activate before this")
    validPeriod: str = Field(max_length=13, description="ms of use after activation")


def build_trading_admin(router: APIRouter | FastAPI, services: Services) -> None:
    r = APIRouter(tags=["admin: spot market"])

    @r.get("/markets")
    def list_markets() -> list[dict[str, Any]]:
        """Every instrument's price path settings and its index price now."""
        return markets(services)

    @r.put("/instruments/{inst_id}")
    def put_instrument(inst_id: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """List a spot instrument (``baseCcy``, ``quoteCcy``, ``tickSz``, ``lotSz``, ``minSz``, ``maxSz``,
        ``startPx``) or change one (sizes, ``state`` live/suspend)."""
        return set_instrument(services, inst_id, body)

    @r.put("/markets/{inst_id}")
    def change_market(inst_id: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Change the walk (vol, drift, seed, walk on/off) or the synthetic book (spreadBp, bookLevels, levelSz)."""
        return set_path(services, inst_id, body)

    @r.post("/markets/{inst_id}/price")
    def pin_price(inst_id: str, body: PxIn) -> dict[str, str]:
        """Set the index price now: a pin in the sandbox (the walk continues from it), a push in production."""
        return set_price(services, inst_id, body.px)

    @r.get("/fee-levels")
    def list_levels() -> list[dict[str, str]]:
        return [level_out(*lv) for lv in services.trading.fee_levels()]

    @r.put("/fee-levels/{level}")
    def change_level(level: str, body: LevelIn) -> dict[str, str]:
        return set_level(services, level, body.taker, body.maker)

    @r.get("/users/{uid}/fee-level")
    def account_level(uid: str) -> dict[str, str]:
        return {"uid": uid, "level": services.trading.account_level(uid)}

    @r.put("/users/{uid}/fee-level")
    def set_account_level(uid: str, body: AccountLevelIn) -> dict[str, str]:
        return {"uid": uid, "level": services.trading.set_account_level(uid, body.level)}

    @r.get("/users/{uid}/fills")
    def fills(uid: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """The account's fills, newest first, with the fee split and the USDT values."""
        services.accounts.get(uid)
        return [fill_out(f) for f in services.trading.fills(uid, FillQuery(limit=limit), since=EPOCH)]

    @r.post("/credits")
    def grant(body: CreditIn) -> dict[str, Any]:
        """Grant a contract credit (a USDT trading-fee voucher) to an ND broker's sub-account."""
        return grant_credit(services, body.uid, body.amt, body.activateExpTime, body.validPeriod)

    @r.get("/credits")
    def list_credits(uid: Annotated[str, Query(max_length=20)] = "",
                     state: Annotated[str, Query(pattern="^(|unactivated|activated|expired|invalid)$")] = "",
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return [credit_out(c) for c in services.credits.list(uid, state=state, limit=limit)]

    @r.post("/credits/{credit_id}/invalidate")
    def invalidate(credit_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
        return credit_out(services.credits.invalidate(credit_id))

    router.include_router(r)
