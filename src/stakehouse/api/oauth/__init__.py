"""OAuth 2.0 endpoints (oauth-and-web.md section 3): ``POST /oauth/token``, ``POST /oauth/revoke``
and ``GET /.well-known/oauth-authorization-server``. The consent page (``/oauth/authorize``) is a
web page (``api/web/oauth.py``) on the same Authlib server object."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stakehouse.api.oauth.server import FormRequest, build_server, error_envelope, refusal_envelope
from stakehouse.errors import DomainError
from stakehouse.oauth import rules
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)

MAX_BODY = 8 * 1024
JSON_HEADERS = {"cache-control": "no-store", "pragma": "no-cache"}


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=JSON_HEADERS)


def base_url(services: Services, request: Request) -> str:
    return services.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def routes(services: Services) -> tuple[list[Route], Any]:
    """The OAuth endpoints and the Authlib server (the consent page needs it too)."""
    server = build_server(services)

    async def form_request(request: Request) -> tuple[FormRequest | None, Response | None]:
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            return None, _json(*refusal_envelope("53010", param0="body"))
        form = await request.form(max_files=0, max_fields=20)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        long = rules.too_long(values)
        if long is not None:
            return None, _json(*refusal_envelope("53015", param0=long[0], param1=str(long[1])))
        return FormRequest(request.method, str(request.url), request.headers, {}, values), None

    def answer(result: tuple[int, Any, Any], grant_type: str) -> Response:
        status, body, _headers = result
        if status >= 400:
            payload = orjson.loads(body) if isinstance(body, (str, bytes)) else dict(body)
            error = OAuth2Error(error=payload.get("error"), description=payload.get("error_description"))
            return _json(*error_envelope(error, grant_type))
        return _json(status, body)

    async def token(request: Request) -> Response:
        req, refused = await form_request(request)
        if req is None:
            assert refused is not None
            return refused
        grant_type = req.form.get("grant_type", "")
        try:
            return answer(await run_in_threadpool(server.create_token_response, req), grant_type)
        except DomainError:  # a code or refresh token redeemed by a racing request: reuse
            return _json(*refusal_envelope("53005" if grant_type == "refresh_token" else "53012"))

    async def revoke(request: Request) -> Response:
        req, refused = await form_request(request)
        if req is None:
            assert refused is not None
            return refused
        return answer(await run_in_threadpool(server.create_endpoint_response, "revocation", req), "")

    async def metadata(request: Request) -> Response:
        base = base_url(services, request)
        data = AuthorizationServerMetadata({
            "issuer": base, "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token", "revocation_endpoint": f"{base}/oauth/revoke",
            "response_types_supported": ["code"], "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"], "scopes_supported": list(rules.SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        })
        data.validate()
        return _json(200, dict(data))

    return [Route("/oauth/token", token, methods=["POST"]), Route("/oauth/revoke", revoke, methods=["POST"]),
            Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"])], server
