"""The web pages: one more adapter beside the OKX, Gemini and admin APIs (oauth-and-web.md 1, 2).

Server-rendered (Jinja2) pages that call the same services as the API adapters and show their
refusals with the API's own codes and messages. Each area is a module with ``routes(web)``:
``auth`` (sign-in, sign-out), ``earn``, ``broker``, ``account``, ``console``, ``oauth`` (the
consent page). ``kit`` holds what
they share (sessions, CSRF, headers, error pages); ``forms`` parses form fields (pure).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from stakehouse.api.okx.ratelimit import RateLimiter
from stakehouse.api.web import account, auth, broker, console, earn, fd_broker, oauth
from stakehouse.api.web.kit import HERE, SecurityHeaders, Web
from stakehouse.wiring import Services


def routes(services: Services, admin_token: str, limiter: RateLimiter, oauth_server: Any) -> list[BaseRoute]:
    """Every web route, each answering with the security headers (static files too)."""
    web = Web(services, admin_token)
    pages: list[Route] = [*auth.routes(web, limiter), *earn.routes(web), *broker.routes(web),
                          *account.routes(web), *console.routes(web), *oauth.routes(web, oauth_server),
                          *fd_broker.routes(web)]
    static = SecurityHeaders(StaticFiles(directory=HERE / "static"), no_store=False)
    out: list[BaseRoute] = [Route(r.path, SecurityHeaders(r.app), methods=list(r.methods or ()), name=r.name,
                                  include_in_schema=False) for r in pages]
    out.append(Mount("/static", app=static, name="static"))
    return out
