"""Operator controls for OAuth clients under ``/admin/oauth/clients`` (oauth-and-web.md section 3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from stakehouse.operator.oauth import client_out, register
from stakehouse.wiring import Services


class ClientIn(BaseModel):
    brokerUid: str = Field(min_length=1, max_length=20, description="An FD broker of type oauth")
    name: str = Field(min_length=1, max_length=64)
    redirectUris: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(min_length=1, max_length=10)
    scopes: list[str] = Field(default_factory=lambda: ["read_only", "trade"], max_length=2)
    ips: list[str] = Field(default_factory=list, max_length=20, description="The broker server's IP allow-list")
    fastApi: bool = False
    public: bool = Field(False, description="A public client (a mobile app): no secret, PKCE only")
    logoUrl: str = Field("", max_length=256)


def build_oauth_admin(router: APIRouter, services: Services) -> None:
    r = APIRouter(tags=["admin: OAuth clients"])

    @r.post("/oauth/clients")
    def create_client(body: ClientIn) -> dict[str, Any]:
        """Register a client; the reply holds ``clientSecret`` (confidential clients) this once."""
        return register(services, body.brokerUid, name=body.name, redirect_uris=body.redirectUris,
                        scopes=body.scopes, ips=body.ips, fast_api=body.fastApi, public=body.public,
                        logo_url=body.logoUrl)

    @r.get("/oauth/clients")
    def list_clients(brokerUid: str = "") -> list[dict[str, Any]]:
        return [client_out(c) for c in services.oauth.clients(brokerUid or None)]

    @r.delete("/oauth/clients/{client_id}", status_code=204)
    def delete_client(client_id: Annotated[str, Path(max_length=32)]) -> Response:
        """Retire a client: every grant made to it ends (their tokens get 53001)."""
        services.oauth.revoke_client(client_id)
        return Response(status_code=204)

    router.include_router(r)
