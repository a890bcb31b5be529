"""Operator controls for liquid staking under ``/admin/staking`` (rules section 7).

Thin, like the rest of the admin API: each route calls one :class:`StakingService` method. The
product settings keep the rule book's *config* names (``min_purchase``, ``daily_redemption_cap``,
...) on the way out and on the way in, so a value read can be written back unchanged. Money is a
string, ``null`` means unlimited. The renderers and parsers here are shared with the CLI.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, FastAPI
from pydantic import BaseModel, Field

from stakehouse import errors as dom
from stakehouse.money import fmt
from stakehouse.services import Services
from stakehouse.staking.rules import RATE_SCALE, ProductConfig
from stakehouse.staking.service import Order, QueueItem

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RATE = re.compile(r"^-?[0-9]{1,20}(\.[0-9]{1,40})?$")


class RateIn(BaseModel):
    rate: str = Field(max_length=64, description='APY as a decimal string, "0.0284" = 2.84 %')


class ReverseIn(BaseModel):
    reason: str = Field(max_length=10_000, description="Why (1..500 characters), kept on the order and entries")


# -- parsing (shared with the CLI) ----------------------------------------------------------


def parse_day(text: str) -> dt.date:
    if not _DAY.match(text):
        raise dom.InvalidParameter("day", "an ISO date, e.g. 2026-01-31")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise dom.InvalidParameter("day", "an ISO date, e.g. 2026-01-31") from None


def parse_rate(text: str) -> Decimal:
    """A plain decimal (sign allowed, so that the service can refuse a negative rate by name)."""
    if not _RATE.match(text.strip()):
        raise dom.InvalidParameter("rate", 'a plain decimal APY, e.g. "0.0284" for 2.84 %')
    return Decimal(text.strip())


# -- rendering (shared with the CLI) --------------------------------------------------------


def _money(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def product_out(cfg: ProductConfig) -> dict[str, Any]:
    """Every config value; money (and the fee rate) as strings, ``None`` = unlimited."""
    return settings_out(cfg)


def settings_out(cfg: DataclassInstance) -> dict[str, Any]:
    """Every field of a product's settings under its rule-book name; money as strings, ``None`` =
    unlimited (shared by the liquid and the provider products)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = _money(value) if isinstance(value, Decimal) else value
    return out


def order_out(o: Order) -> dict[str, Any]:
    return {"ordId": o.ord_id, "product": o.product, "uid": o.uid, "type": o.type, "amt": fmt(o.amt),
            "redeemingAmt": _money(o.redeeming_amt), "scheduledAmt": fmt(o.scheduled_amt), "status": o.status,
            "fast": o.fast, "requestTime": o.request_time.isoformat(), "completedTime": _iso(o.completed_time),
            "estCompletedTime": _iso(o.est_completed_time), "reversalReason": o.reversal_reason}


def queue_item_out(position: int, item: QueueItem) -> dict[str, Any]:
    return {"position": position, **order_out(item.order), "unscheduled": fmt(item.unscheduled)}


def queue_out(services: Services, product: str) -> dict[str, Any]:
    staking = services.staking
    items = staking.queue(product)
    cfg = staking.product(product)
    today = staking.today()
    previous = today - dt.timedelta(days=1)
    return {"product": product, "today": today.isoformat(),
            "dailyRedemptionCap": _money(cfg.daily_redemption_cap),
            "capUsedToday": fmt(staking.cap_use(product, today)),
            "previousDay": previous.isoformat(), "capUsedPreviousDay": fmt(staking.cap_use(product, previous)),
            "unscheduledTotal": fmt(sum((i.unscheduled for i in items), Decimal(0))),
            "queue": [queue_item_out(n, item) for n, item in enumerate(items, start=1)]}


def rates_out(services: Services, product: str, days: int) -> list[dict[str, str]]:
    if not 1 <= days <= 365:
        raise dom.InvalidParameter("days", "1..365")
    return [{"day": services.calendar.day(start).isoformat(), "start": start.isoformat(),
             "rate": fmt(rate, RATE_SCALE)} for start, rate in services.staking.apy_history(product, days)]


def run_out(r: dict[str, Any]) -> dict[str, Any]:
    return {"product": r["product"], "day": r["day"], "rate": None if r["rate"] is None else fmt(r["rate"], RATE_SCALE),
            "holders": r["holders"], "eligible": fmt(r["eligible"]), "gross": fmt(r["gross"]), "net": fmt(r["net"]),
            "fee": fmt(r["fee"]), "entryId": None if r["entry_id"] is None else str(r["entry_id"]),
            "ranAt": _iso(r["ran_at"])}


def reward_out(r: dict[str, Any]) -> dict[str, Any]:
    return {"product": r["product"], "day": r["day"], "uid": r["uid"], "eligible": fmt(r["eligible"]),
            "gross": fmt(r["gross"]), "net": fmt(r["net"]), "fee": fmt(r["fee"])}


def publish(services: Services, product: str, day: str, rate: str) -> dict[str, str]:
    on, value = parse_day(day), parse_rate(rate)
    services.staking.publish_rate(product, on, value)
    return {"product": product, "day": on.isoformat(), "rate": fmt(value, RATE_SCALE)}


def runs_out(services: Services, product: str, limit: int) -> list[dict[str, Any]]:
    return [run_out(r) for r in services.staking.reward_runs(product, min(max(limit, 1), 1000))]


def rewards_out(services: Services, uid: str, product: str) -> list[dict[str, Any]]:
    return [reward_out(r) for r in services.staking.rewards_of(uid, product)]


def build_staking_admin(router: APIRouter | FastAPI, services: Services) -> None:
    """Add the ``/staking`` routes to the admin router (which carries the bearer-token check)."""
    r = APIRouter(prefix="/staking", tags=["admin: staking"])
    staking = services.staking

    @r.get("/products")
    def list_products() -> list[dict[str, Any]]:
        return [product_out(c) for c in staking.products()]

    @r.get("/products/{product}")
    def get_product(product: str) -> dict[str, Any]:
        return product_out(staking.product(product))

    @r.patch("/products/{product}")
    def update_product(product: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return product_out(staking.update_product(product, body))

    @r.put("/products/{product}/rates/{day}")
    def publish_rate(product: str, day: str, body: RateIn) -> dict[str, str]:
        return publish(services, product, day, body.rate)

    @r.get("/products/{product}/rates")
    def rates(product: str, days: int = 30) -> list[dict[str, str]]:
        return rates_out(services, product, days)

    @r.get("/products/{product}/queue")
    def queue(product: str) -> dict[str, Any]:
        return queue_out(services, product)

    @r.get("/products/{product}/reward-runs")
    def reward_runs(product: str, limit: int = 30) -> list[dict[str, Any]]:
        return runs_out(services, product, limit)

    @r.get("/users/{uid}/rewards")
    def rewards(uid: str, product: str = "ETH") -> list[dict[str, Any]]:
        return rewards_out(services, uid, product)

    @r.get("/orders/{ord_id}")
    def get_order(ord_id: str) -> dict[str, Any]:
        return order_out(staking.order(ord_id))

    @r.post("/orders/{ord_id}/reverse")
    def reverse(ord_id: str, body: ReverseIn) -> dict[str, Any]:
        return order_out(staking.reverse_order(ord_id, body.reason))

    router.include_router(r)
