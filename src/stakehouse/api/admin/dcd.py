"""Operator controls for DCD under ``/admin/dcd`` (parsers and renderers in ``operator/dcd.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, FastAPI

from stakehouse.operator.dcd import book_out, series_out, set_series
from stakehouse.wiring import Services


def build_dcd_admin(router: APIRouter | FastAPI, services: Services) -> None:
    r = APIRouter(prefix="/dcd", tags=["admin: DCD"])

    @r.get("/series")
    def get_series() -> list[dict[str, Any]]:
        """Every series: pair, tenors, strike ladder, sizes and quotas, volatility, margin."""
        return [series_out(s) for s in services.dcd.series()]

    @r.put("/series/{ccy}/{alt_ccy}")
    def put_series(ccy: str, alt_ccy: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        """Create or change a series (fields: ``tenors`` "1,2,3,7,14", ``strikePcts`` "-8,-5,-2,2,5,8",
        ``strikeTick``, ``callMin``/``callMax``/``callStep``/``callQuota`` (in ccy), the same for ``put``
        (in altCcy), ``vol``, ``margin``, ``enabled``). Products listed from the next listing use it."""
        return set_series(services, ccy, alt_ccy, body)

    @r.get("/book")
    def get_book() -> list[dict[str, str]]:
        """The DCD book's exposure: open orders' notional per product and state."""
        return book_out(services)

    router.include_router(r)
