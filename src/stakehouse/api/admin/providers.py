"""Operator controls for provider staking (Gemini-style products) and Gemini API keys, under
``/admin/providers``, ``/admin/prices`` and ``/admin/users/{uid}/...``.

Thin like the rest of the admin API. Money and rates are strings on the way in and out; product
settings keep their rule-book names (``deposit_usd_limit``, ``unstake_mode``, ...) so a value read
can be written back unchanged. The renderers and parsers here are shared with the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI
from pydantic import BaseModel, Field

from stakehouse.operator.providers import (
    account_balance_out,
    gemini_key_out,
    parse_decimal,
    price_out,
    product_out,
    provider_out,
    publish_bps,
    run_out,
)
from stakehouse.wiring import Services


class ProviderIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    providerId: str | None = Field(None, max_length=64, description="A UUID; generated when absent")


class RateBpsIn(BaseModel):
    rate: str = Field(max_length=64, description='Simple annual rate in basis points, e.g. "228.0197"')


class PriceIn(BaseModel):
    price: str = Field(max_length=64, description='USD price, e.g. "3012.55"')


class GeminiKeyIn(BaseModel):
    scope: str = Field("account", pattern="^(account|master)$")
    roles: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=lambda: ["Trader"], max_length=4)
    timeBasedNonce: bool = False
    ips: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    label: str = Field("", max_length=50)


# -- parsing and rendering (shared with the CLI) -------------------------------------------------


def build_provider_admin(router: APIRouter | FastAPI, services: Services) -> None:
    """Add the provider-staking and Gemini-key routes to the admin router (bearer-token checked)."""
    r = APIRouter(tags=["admin: provider staking (Gemini)"])
    ps, keys = services.provider_staking, services.gemini_keys

    @r.post("/providers")
    def create_provider(body: ProviderIn) -> dict[str, Any]:
        return provider_out(ps.create_provider(body.name, body.providerId))

    @r.get("/providers")
    def list_providers() -> list[dict[str, Any]]:
        return [provider_out(p) for p in ps.providers()]

    @r.get("/providers/products")
    def list_products() -> list[dict[str, Any]]:
        return [product_out(p) for p in ps.products()]

    @r.put("/providers/{provider_id}/products/{ccy}")
    def set_product(provider_id: str, ccy: str, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Offer CCY with the provider (defaults for settings left out) or change its settings."""
        return product_out(ps.set_product(provider_id, ccy, body))

    @r.put("/providers/{provider_id}/products/{ccy}/rates/{day}")
    def publish_rate(provider_id: str, ccy: str, day: str, body: RateBpsIn) -> dict[str, str]:
        return publish_bps(services, provider_id, ccy, day, body.rate)

    @r.get("/providers/accrual-runs")
    def accrual_runs(limit: int = 30) -> list[dict[str, Any]]:
        return [run_out(x) for x in ps.accrual_runs(limit)]

    @r.put("/prices/{ccy}")
    def set_price(ccy: str, body: PriceIn) -> dict[str, str]:
        return price_out(ps.set_price(ccy, parse_decimal("price", body.price)))

    @r.get("/prices")
    def list_prices() -> list[dict[str, str]]:
        return [price_out(p) for p in ps.prices()]

    @r.get("/users/{uid}/staking-balances")
    def staking_balances(uid: str) -> list[dict[str, str]]:
        return [account_balance_out(b) for b in ps.account_balances(uid)]

    @r.post("/users/{uid}/gemini-keys")
    def create_gemini_key(uid: str, body: GeminiKeyIn) -> dict[str, Any]:
        key, secret = keys.create_key(uid, scope=body.scope, roles=body.roles, time_based_nonce=body.timeBasedNonce,
                                      ips=body.ips, label=body.label)
        return {**gemini_key_out(key), "secret": secret}

    @r.get("/users/{uid}/gemini-keys")
    def list_gemini_keys(uid: str) -> list[dict[str, Any]]:
        return [gemini_key_out(k) for k in keys.list_keys(uid)]

    @r.delete("/gemini-keys/{api_key}")
    def revoke_gemini_key(api_key: str) -> dict[str, Any]:
        return gemini_key_out(keys.revoke_key(api_key))

    router.include_router(r)
