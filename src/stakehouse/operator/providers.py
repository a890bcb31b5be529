"""Parsers and views of provider staking, USD prices and Gemini keys for the operator's tools.

No web framework here: the admin API and the CLI both render and parse with these."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from stakehouse import errors as dom
from stakehouse.accounts.gemini_keys import GeminiKey
from stakehouse.assets.prices import UsdPrice
from stakehouse.money import fmt
from stakehouse.operator.staking import parse_day, settings_out
from stakehouse.staking.provider.rules import ProviderProduct, apy_pct, rate_pct
from stakehouse.staking.provider.service import AccountBalance, Provider
from stakehouse.wiring import Services

_DECIMAL = re.compile(r"^-?[0-9]{1,24}(\.[0-9]{1,30})?$")


def parse_decimal(field: str, text: str) -> Decimal:
    """A plain decimal (sign allowed, so that the service can refuse a negative value by name)."""
    if not _DECIMAL.match(text.strip()):
        raise dom.InvalidParameter(field, "a plain decimal, e.g. 228.0197")
    return Decimal(text.strip())


def provider_out(p: Provider) -> dict[str, Any]:
    return {"providerNo": p.provider_no, "providerId": p.provider_id, "name": p.name}


def product_out(p: ProviderProduct) -> dict[str, Any]:
    return settings_out(p)


def price_out(p: UsdPrice) -> dict[str, str]:
    return {"ccy": p.ccy, "price": fmt(p.price), "setAt": p.set_at.isoformat()}


def gemini_key_out(k: GeminiKey) -> dict[str, Any]:
    return {"apiKey": k.api_key, "uid": k.uid, "scope": k.scope, "roles": list(k.roles),
            "timeBasedNonce": k.time_based_nonce, "ips": [ip for ip in k.ips.split(",") if ip], "label": k.label,
            "createdAt": k.created_at.isoformat(), "revokedAt": k.revoked_at.isoformat() if k.revoked_at else None}


def account_balance_out(b: AccountBalance) -> dict[str, str]:
    return {"providerId": b.provider_id, "ccy": b.ccy, "balance": fmt(b.available),
            "pendingUnstake": fmt(b.pending_unstake)}


def publish_bps(services: Services, provider_id: str, ccy: str, day: str, rate: str) -> dict[str, str]:
    on, bps = parse_day(day), parse_decimal("rate", rate)
    product = services.provider_staking.publish_rate(provider_id, ccy, on, bps)
    return {"providerId": product.provider_id, "ccy": product.ccy, "day": on.isoformat(), "rate": fmt(bps),
            "ratePct": fmt(rate_pct(bps)), "apyPct": fmt(apy_pct(bps))}


def run_out(r: dict[str, Any]) -> dict[str, Any]:
    return {"providerId": r["provider_id"], "ccy": r["ccy"], "day": r["day"],
            "rate": None if r["rate_bps"] is None else fmt(r["rate_bps"]), "stakers": r["holders"],
            "total": fmt(r["total"]), "entryId": None if r["entry_id"] is None else str(r["entry_id"]),
            "ranAt": r["ran_at"].isoformat()}
