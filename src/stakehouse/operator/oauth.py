"""OAuth clients for the admin API and the CLI: one renderer, one registration call."""

from __future__ import annotations

from typing import Any

from stakehouse.oauth.service import Client
from stakehouse.wiring import Services


def client_out(c: Client, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clientId": c.client_id, "brokerUid": c.broker_uid, "name": c.name, "logoUrl": c.logo_url,
        "redirectUris": list(c.redirect_uris), "scopes": list(c.scopes), "ips": [i for i in c.ips.split(",") if i],
        "fastApi": c.fast_api, "public": c.public, "createdAt": c.created_at.isoformat()}
    if secret is not None:
        out["clientSecret"] = secret  # shown this once; stored only as a hash
    return out


def register(services: Services, broker_uid: str, *, name: str, redirect_uris: list[str], scopes: list[str],
             ips: list[str], fast_api: bool, public: bool, logo_url: str = "") -> dict[str, Any]:
    client, secret = services.oauth.register_client(broker_uid, name=name, redirect_uris=redirect_uris,
                                                    scopes=scopes, ips=ips, fast_api=fast_api, public=public,
                                                    logo_url=logo_url)
    return client_out(client, secret)
