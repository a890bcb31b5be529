"""The OKX v5 REST adapter: route table, request pipeline, envelope.

Every reply is JSON ``{"code", "msg", "data"}``; no stack trace ever reaches a client.
The pipeline follows the conventions' verification order: route and method, headers,
timestamp, key, environment, passphrase, signature, key state, IP, permission, rate limit,
parameters, business rules.

Nothing a request does reaches the client as anything but that envelope: a database that cannot
answer is 50013 "Systems are busy" (reads are tried once more first), anything unexpected is
logged and answered 50026, and the connection stays open in both cases.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import anyio
import orjson
import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from stakehouse.accounts.rules import ip_allowed
from stakehouse.accounts.service import AuthKey
from stakehouse.api.net import AnyMethod, client_ip
from stakehouse.api.okx.auth import AuthContext, Authenticator, Presented
from stakehouse.api.okx.errors import OkxError, Overrides, from_domain
from stakehouse.api.okx.params import Params, canonical, parse_json_body
from stakehouse.api.okx.ratelimit import Limit, RateLimiter
from stakehouse.db.batch import SingleFlight
from stakehouse.db.engine import unavailable
from stakehouse.errors import DomainError
from stakehouse.oauth.rules import scope_allows
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)

#: Wrong passphrases allowed per API key and per client IP before the slow check is skipped and the
#: request refused with 50011 (times ``rate_limit_factor``, like every limit).
PASSPHRASE_FAILURES_PER_KEY = Limit(5, 60, "key")
PASSPHRASE_FAILURES_PER_IP = Limit(20, 60, "ip")
#: Slow passphrase checks (scrypt) running at once per process, on worker threads.
PASSPHRASE_CHECKS_AT_ONCE = 2
THROTTLED_MSG = "Too Many Requests: too many wrong passphrases from this IP or for this API key; try again later"


_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


class Call(NamedTuple):
    """What a route handler gets: the services, the parsed parameters, the caller (a named tuple:
    one is made per request)."""

    services: Services
    params: Params
    auth: AuthContext | None
    ip: str
    #: The request's ``Host`` header (links this server hands out point at it, unless ``public_url`` is set).
    host: str = ""

    @property
    def base_url(self) -> str:
        """Where links to this server point: ``public_url``, else the request's host (when it is a
        plain ``name[:port]``)."""
        host = self.host if _HOST.fullmatch(self.host) else "localhost"
        return self.services.settings.public_url or f"http://{host}"

    @property
    def caller(self) -> AuthContext:
        """Who signed the request (its ``user``, ``key`` and ``uid``); private routes only."""
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
    #: The body is a JSON array of objects (``trade/batch-orders``): ``Params.items``.
    batch: bool = False
    #: A read that may take long (several statements, or the sandbox's price walk catching up):
    #: answered on a worker thread like a write, not on the event loop.
    threaded: bool = False
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.handler))


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(err: OkxError) -> Response:
    return _json({"code": err.code, "msg": err.msg, "data": []}, err.status)


class OrderResults(list[dict[str, Any]]):
    """Order-style results (conventions §3.2): each item has its own ``sCode``/``sMsg``; the
    envelope's code is ``0`` when all succeeded, ``1`` when all failed, ``2`` when some did."""


def ok_response(data: Any) -> Response:
    if isinstance(data, OrderResults):
        failed = sum(item["sCode"] != "0" for item in data)
        if failed and failed == len(data):
            return _json({"code": "1", "msg": "All operations failed", "data": data})
        if failed:
            return _json({"code": "2", "msg": "Bulk operation partially succeeded.", "data": data})
    return _json({"code": "0", "msg": "", "data": data})


async def _read(route: Route, call: Call) -> Any:
    """A read handler's answer: awaited when it is a coroutine function, called on a worker thread
    when it is ``threaded``, else called on the loop."""
    if route.threaded:
        return await run_in_threadpool(route.handler, call)
    data = route.handler(call)
    return await data if route.is_async else data


class OkxAdapter:
    def __init__(self, services: Services, routes: Sequence[Route], *, limiter: RateLimiter | None = None) -> None:
        self.services = services
        settings = services.settings
        self.auth = Authenticator(services.clock, skew_ms=settings.auth_skew_ms,
                                  sandbox=bool(settings.sandbox))
        self.limiter = limiter or RateLimiter(settings.redis_url, settings.rate_limit_factor)
        self.routes = list(routes)
        self.max_body = settings.max_body_bytes
        self.trusted = settings.trusted_proxies
        self._slow_checks = anyio.CapacityLimiter(PASSPHRASE_CHECKS_AT_ONCE)
        accounts = services.accounts
        self._key_lookups: SingleFlight[str, AuthKey | None] = SingleFlight(
            lambda api_key: services.db.read_twice(lambda: run_in_threadpool(accounts.lookup_for_auth, api_key)))

    def _rate_key(self, route: Route, call_ip: str, auth: AuthContext | None, params: Params) -> tuple[str, ...]:
        env = auth.user.env if auth else "public"
        rule = route.limit.rule
        base = auth.uid if rule.startswith("uid") and auth else call_ip
        extra = ""
        if rule.endswith("+ccy"):  # keyed on the canonical spelling: usdt and USDT are one currency
            extra = canonical(params.values.get("ccy"), 16)
        elif rule.endswith("+instId"):
            extra = canonical(params.values.get("instId"), 32)
        elif rule.endswith("+instType"):
            extra = canonical(params.values.get("instType"), 16)
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
        if route.batch and isinstance(parsed, list):
            if not parsed:
                return Params({}), OkxError("50000")
            if not all(isinstance(item, dict) for item in parsed):
                return Params({}), OkxError("51000", msg="Parameter body error: an array of JSON objects is required")
            return Params({}, items=[Params(item) for item in parsed]), None
        if not isinstance(parsed, dict):
            return Params({}), OkxError("51000", msg="Parameter body error: a JSON object is required")
        return Params(parsed), None

    @staticmethod
    async def _handle(route: Route, call: Call) -> Response:
        """The business part: parameters, the service call, the reply.

        Coroutine handlers are awaited on the loop. Plain GET handlers are one short indexed query
        (autocommit): answering them on the loop beats a thread hop and the GIL hand-offs it brings
        under load (bench/RESULTS.md); ``threaded`` reads (several statements, the sandbox's price
        walk) and writes, which may wait on locks, go to a worker thread. Reads the database could
        not answer are tried once more; writes are not (50013)."""
        try:
            if route.method == "GET" or route.is_async:  # reads (async handlers only read)
                try:
                    data = await _read(route, call)
                except Exception as exc:
                    if not call.services.db.retry_after(exc):
                        raise
                    data = await _read(route, call)
            else:
                data = await run_in_threadpool(route.handler, call)
            return ok_response(data)
        except DomainError as exc:
            return error_response(from_domain(exc, route.overrides))
        except OkxError as err:
            return error_response(err)

    async def _check_passphrase(self, presented: Presented, ip: str) -> None:
        """The slow passphrase check (50105), bounded: refused without it (50011) once a key or an IP
        has too many recent failures, run on a worker thread, at most ``PASSPHRASE_CHECKS_AT_ONCE``
        at a time, so that other requests never wait for it."""
        key_id = ("passphrase", "key", presented.found.key.api_key)
        ip_id = ("passphrase", "ip", ip)
        if not (await self.limiter.test(PASSPHRASE_FAILURES_PER_KEY, *key_id)
                and await self.limiter.test(PASSPHRASE_FAILURES_PER_IP, *ip_id)):
            raise OkxError("50011", msg=THROTTLED_MSG)
        if await anyio.to_thread.run_sync(self.auth.passphrase_ok, presented, limiter=self._slow_checks):
            return
        await self.limiter.hit(PASSPHRASE_FAILURES_PER_KEY, *key_id)
        await self.limiter.hit(PASSPHRASE_FAILURES_PER_IP, *ip_id)
        raise OkxError("50105")

    async def _authenticate(self, route: Route, perm: str, headers: dict[str, str], target: str, body: bytes,
                            ip: str) -> AuthContext:
        api_key = headers.get("ok-access-key", "")
        accounts = self.services.accounts
        hit, found = accounts.cached_auth_key(api_key)
        if not hit:  # only a cache miss needs the database (and so a worker thread), once per key at a time
            found = await self._key_lookups.get(api_key)
        presented = self.auth.present(headers, found)
        if not self.auth.passphrase_known(presented):
            await self._check_passphrase(presented, ip)
        return self.auth.finish(presented, method=route.method, target=target, body=body, ip=ip, perm=perm)

    async def _bearer(self, route: Route, perm: str, headers: dict[str, str], token: str, ip: str) -> AuthContext:
        """An OAuth access token instead of the ``OK-ACCESS-*`` headers (conventions 2.9): both on one
        request 53009; the token (53000-53004), its device (53006), the client's IP allow-list
        (53014), the scope for the route (53013; never withdraw or the ND sub-account module)."""
        if headers.get("ok-access-key"):
            raise OkxError("53009")
        try:
            bearer = await run_in_threadpool(self.services.oauth.bearer, token)
        except DomainError as exc:
            raise from_domain(exc) from None
        env = "demo" if headers.get("x-simulated-trading", "") == "1" else "live"
        if env != bearer.user.env:
            raise OkxError("50101")
        if bearer.grant.term_id is not None and headers.get("termid", "") != bearer.grant.term_id:
            raise OkxError("53006")
        if bearer.client.ips and not ip_allowed(bearer.client.ips, ip):
            raise OkxError("53014")
        if not scope_allows(bearer.scopes, perm, route.path):
            raise OkxError("53013")
        return AuthContext(bearer.user, None, ip, bearer.client.client_id, bearer.grant.id)

    async def _touch(self, auth: AuthContext) -> None:
        """Record the key's use (when ``touch_due``: at most once a minute per key and process).
        Bookkeeping only: a database that cannot take it now does not fail the request."""
        try:
            if auth.key is not None:
                await run_in_threadpool(self.services.accounts.touch_key, auth.key, self.services.clock.now())
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("api_key_touch_skipped", error=type(exc).__name__)

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
                    bearer = headers.get("authorization", "")
                    if bearer[:7].lower() == "bearer ":
                        auth = await self._bearer(route, route.perm, headers, bearer[7:].strip(), ip)
                    else:
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
            if auth is not None and auth.key is not None and \
                    self.services.accounts.touch_due(auth.key, self.services.clock.now()):
                await self._touch(auth)
            return await self._handle(route, Call(self.services, params, auth, ip, headers.get("host", "")))

        return handle

    def install(self, app: Starlette, prefix: str = "/api/v5") -> None:
        """Answer everything under ``prefix`` through one route at the front of ``app``'s routing
        table, dispatching on the exact path in this adapter's own table (one dictionary lookup
        instead of trying route patterns in turn). An unknown path gets the OKX 404, a known path
        with a wrong method (any method: TRACE too) 50115, anything in maintenance mode 50001
        (HTTP 503); a database that cannot answer 50013, anything unexpected 50026."""
        table: dict[str, dict[str, Callable[[Request], Any]]] = {}
        services = self.services
        for route in self.routes:
            table.setdefault(prefix + route.path, {})[route.method] = self.endpoint(route)

        async def dispatch(request: Request) -> Response:
            path = request.scope["path"]
            methods = table.get(path)
            if methods is None:
                return error_response(OkxError("404"))
            endpoint = methods.get(request.scope["method"])
            if endpoint is None:
                return error_response(OkxError("50115"))
            try:
                if services.in_maintenance():
                    return error_response(OkxError("50001"))
                response: Response = await endpoint(request)
                return response
            except Exception as exc:  # answered here, so the connection stays open
                if unavailable(exc):
                    log.warning("database_unavailable", path=path, error=type(exc).__name__)
                    return error_response(OkxError("50013"))
                log.exception("unhandled", path=path, error=type(exc).__name__)
                return unhandled_error()

        every_method = AnyMethod(dispatch)  # every method reaches the dispatch: TRACE gets 50115
        app.router.routes[0:0] = [StarletteRoute(prefix + "/{rest:path}", every_method),
                                  StarletteRoute(prefix, every_method)]


def unhandled_error() -> Response:
    """The reply to an exception nobody expected (logged by the caller, never shown)."""
    return error_response(OkxError("50026"))
