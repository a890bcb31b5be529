"""Operator controls for liquid staking under ``/admin/staking`` (rules section 7).

Thin, like the rest of the admin API: each route calls one :class:`StakingService` method. The
product settings keep the rule book's *config* names (``min_purchase``, ``daily_redemption_cap``,
...) on the way out and on the way in, so a value read can be written back unchanged. Money is a
string, ``null`` means unlimited. The renderers and parsers here are shared with the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, FastAPI
from pydantic import BaseModel, Field

from stakehouse.operator.staking import order_out, product_out, publish, queue_out, rates_out, rewards_out, runs_out
from stakehouse.wiring import Services

if TYPE_CHECKING:
    pass


class RateIn(BaseModel):
    rate: str = Field(max_length=64, description='APY as a decimal string, "0.0284" = 2.84 %')


class ReverseIn(BaseModel):
    reason: str = Field(max_length=10_000, description="Why (1..500 characters), kept on the order and entries")


# -- parsing (shared with the CLI) ----------------------------------------------------------


# -- rendering (shared with the CLI) --------------------------------------------------------


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
