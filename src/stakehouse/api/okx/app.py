"""The OKX v5 REST adapter: route table, request pipeline, envelope.

Every reply is JSON ``{"code", "msg", "data"}``; no stack trace ever reaches a client.
The pipeline follows the conventions' verification order: route and method, headers,
timestamp, key, environment, passphrase, signature, key state, IP, permission, rate limit,
parameters, business rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from stakehouse.api.net import client_ip
from stakehouse.api.okx.auth import AuthContext, Authenticator
from stakehouse.api.okx.errors import OkxError, Overrides, from_domain
from stakehouse.api.okx.params import Params, parse_json_body
from stakehouse.api.okx.ratelimit import Limit, RateLimiter
from stakehouse.errors import DomainError
from stakehouse.services import Services


@dataclass(frozen=True)
class Call:
    """What a route handler gets: the services, the parsed parameters, the caller."""

    services: Services
    params: Params
    auth: AuthContext | None
    ip: str

    @property
    def user(self) -> AuthContext:
        assert self.auth is not None
        return self.auth


#: A plain function (run on a worker thread for writes, on the loop for short reads) or a
#: coroutine function (awaited on the loop: reads through ``Database.hot``).
Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # below /api/v5
    handler: Handler
    #: ``None`` for public routes, else ``read``, ``trade`` or ``withdraw``.
    perm: str | None
    limit: Limit
    #: Route-specific codes for domain errors (e.g. a short balance on a transfer is 58116).
    overrides: Overrides = field(default_factory=dict)
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.handler))


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(err: OkxError) -> Response:
    return _json({"code": err.code, "msg": err.msg, "data": []}, err.status)


def ok_response(data: Any) -> Response:
    return _json({"code": "0", "msg": "", "data": data})


class OkxAdapter:
    def __init__(self, services: Services, routes: Sequence[Route]) -> None:
        self.services = services
        settings = services.settings
        self.auth = Authenticator(services.clock, skew_ms=settings.auth_skew_ms,
                                  sandbox=bool(settings.sandbox))
        self.limiter = RateLimiter(settings.redis_url, settings.rate_limit_factor)
        self.routes = list(routes)
        self.max_body = settings.max_body_bytes
        self.trusted = settings.trusted_proxies

    def _rate_key(self, route: Route, call_ip: str, auth: AuthContext | None, params: Params) -> tuple[str, ...]:
        env = auth.user.env if auth else "public"
        rule = route.limit.rule
        base = auth.uid if rule.startswith("uid") and auth else call_ip
        extra = ""
        if rule.endswith("+ccy"):
            extra = str(params.values.get("ccy", ""))[:16]
        elif rule.endswith("+instId"):
            extra = str(params.values.get("instId", ""))[:32]
        elif rule.endswith("+instType"):
            extra = str(params.values.get("instType", ""))[:16]
        return (env, route.method, route.path, base, extra)

    @staticmethod
    def _params(route: Route, query: dict[str, str], body: bytes) -> tuple[Params, OkxError | None]:
        """The request's parameters, and the body error to report once the rate limit has counted it."""
        if route.method == "GET":
            return Params(query), None
        try:
            parsed = parse_json_body(body)
        except OkxError as err:
            return Params({}), err
        if not isinstance(parsed, dict):
            return Params({}), OkxError("51000", msg="Parameter body error: a JSON object is required")
        return Params(parsed), None

    @staticmethod
    async def _handle(route: Route, call: Call) -> Response:
        """The business part: parameters, the service call, the reply.

        Coroutine handlers are awaited on the loop. Plain GET handlers are one short indexed query
        (autocommit): answering them on the loop beats a thread hop and the GIL hand-offs it brings
        under load (bench/RESULTS.md). Writes may wait on locks, so they go to a worker thread."""
        try:
            if route.is_async:
                data = await route.handler(call)
            elif route.method == "GET":
                data = route.handler(call)
            else:
                data = await run_in_threadpool(route.handler, call)
            return ok_response(data)
        except DomainError as exc:
            return error_response(from_domain(exc, route.overrides))
        except OkxError as err:
            return error_response(err)

    async def _authenticate(self, route: Route, perm: str, headers: dict[str, str], target: str, body: bytes,
                            ip: str) -> AuthContext:
        api_key = headers.get("ok-access-key", "")
        hit, found = self.services.accounts.cached_auth_key(api_key)
        if not hit:  # only a cache miss needs the database (and so a worker thread)
            found = await run_in_threadpool(self.services.accounts.lookup_for_auth, api_key)
        return self.auth.authenticate(headers=headers, method=route.method, target=target, body=body, ip=ip,
                                      perm=perm, found=found)

    def endpoint(self, route: Route) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            body = b""
            if route.method != "GET":  # OKX signs GET requests without a body; one is ignored
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > self.max_body:
                        return error_response(OkxError("51000", msg=f"Parameter body error: larger than "
                                                                    f"{self.max_body} bytes"))
            scope = request.scope
            raw_path = scope.get("raw_path") or request.url.path.encode()
            query_string = scope.get("query_string", b"")
            target = raw_path.decode("latin-1") + (("?" + query_string.decode("latin-1")) if query_string else "")
            # ASGI servers give header names lower-cased.
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            ip = client_ip(request, self.trusted)
            try:
                auth = None
                if route.perm is not None:
                    auth = await self._authenticate(route, route.perm, headers, target, body, ip)
                params, body_error = self._params(route, dict(request.query_params) if query_string else {}, body)
                # The rate limit comes before parameter errors (conventions 2.4): malformed
                # requests are counted too.
                if not await self.limiter.hit(route.limit, *self._rate_key(route, ip, auth, params)):
                    raise OkxError("50011")
                if body_error is not None:
                    raise body_error
            except OkxError as err:
                return error_response(err)
            if auth is not None:
                accounts, now = self.services.accounts, self.services.clock.now()
                if accounts.touch_due(auth.key, now):
                    await run_in_threadpool(accounts.touch_key, auth.key, now)
            return await self._handle(route, Call(self.services, params, auth, ip))

        return handle

    def install(self, app: Starlette, prefix: str = "/api/v5") -> None:
        """Answer everything under ``prefix`` through one route at the front of ``app``'s routing
        table, dispatching on the exact path in this adapter's own table (one dictionary lookup
        instead of trying route patterns in turn). An unknown path gets the OKX 404, a known path
        with a wrong method 50115, anything in maintenance mode 50001 (HTTP 503)."""
        table: dict[str, dict[str, Callable[[Request], Any]]] = {}
        services = self.services
        for route in self.routes:
            table.setdefault(prefix + route.path, {})[route.method] = self.endpoint(route)

        async def dispatch(request: Request) -> Response:
            methods = table.get(request.scope["path"])
            if methods is None:
                return error_response(OkxError("404"))
            endpoint = methods.get(request.scope["method"])
            if endpoint is None:
                return error_response(OkxError("50115"))
            if services.in_maintenance():
                return error_response(OkxError("50001"))
            response: Response = await endpoint(request)
            return response

        app.router.routes.insert(0, StarletteRoute(prefix + "/{rest:path}", dispatch, methods=list(ANY_METHOD)))


ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def unhandled_error() -> Response:
    """The reply to an exception nobody expected (logged by the caller, never shown)."""
    return error_response(OkxError("50026"))
