"""The Gemini staking REST adapter: route table, request pipeline, replies.

Success replies are bare JSON (an array or an object); errors are
``{"result": "error", "reason", "message"}`` with the reason's HTTP status; no stack trace ever
reaches a client. The pipeline, in order (spec sections 0 and 7):

1. Route and method: an unknown path under ``/v1``, or a known one with the wrong method, is
   404 ``EndpointNotFound`` (open point 17). In maintenance mode (``Services.in_maintenance``)
   every route is 503 ``Maintenance``.
2. Public routes (``GET /v1/staking/rates``): rate limit per client IP, then the answer.
3. Headers ``X-GEMINI-APIKEY``, ``X-GEMINI-PAYLOAD``, ``X-GEMINI-SIGNATURE`` (the first absent one
   decides the reason). The HTTP body and the query string are never read for parameters.
4. The key: unknown or revoked is 400 ``InvalidApiKey``.
5. The signature: hex HMAC-SHA384 over the exact payload header text, case-insensitive,
   compared in constant time (400 ``InvalidSignature``).
6. The payload: base64 of a JSON object (400 ``InvalidJson``); numbers keep their source text.
7. ``request``: absent is 400 ``EndpointNotFound``, another route 400 ``EndpointMismatch``.
8. The nonce: absent 400 ``MissingNonce``; malformed, outside +-30 s of server time (time-based
   keys) or not above the key's last accepted one is 400 ``InvalidNonce``. A nonce that passes
   is consumed here (atomic compare-and-set), whatever happens next.
9. The key's IP allow-list (403 ``RemoteAddressForbidden``), then its roles (403 ``MissingRole``).
   Both come after the nonce is consumed: a signed request spends its nonce even when refused.
10. Rate limit per API key, with the queued burst (429 ``RateLimit``; see ``ratelimit.py``).
11. On a worker thread: the account (``account`` field: 400 ``MissingAccounts`` /
    ``InvalidAccountName``), the endpoint's fields, the service call. Domain errors are mapped by
    ``errors.from_domain``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from stakehouse.accounts.gemini_keys import GeminiAuthKey
from stakehouse.accounts.rules import ip_allowed
from stakehouse.api.gemini import auth
from stakehouse.api.gemini.errors import GeminiError, endpoint_not_found, from_domain
from stakehouse.api.gemini.ratelimit import PRIVATE, PUBLIC, BurstLimiter
from stakehouse.api.gemini.routes import ALL, Call, Payload, Route
from stakehouse.api.gemini.wire import dumps, epoch_us
from stakehouse.api.net import AnyMethod, client_ip
from stakehouse.api.okx.ratelimit import RateLimiter
from stakehouse.db.batch import SingleFlight
from stakehouse.db.engine import unavailable
from stakehouse.errors import DomainError
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)

PREFIX = "/v1"
#: The message of a 503 ``System`` reply when the database cannot answer (the request may be retried;
#: a signed one with a new nonce).
UNAVAILABLE_MSG = "The service is busy; please try again later"


def json_response(data: object, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json")


def error_response(err: GeminiError) -> Response:
    return json_response({"result": "error", "reason": err.reason, "message": err.message}, err.status)


def unhandled_error() -> Response:
    """The reply to an exception nobody expected (logged by the caller, never shown)."""
    return error_response(GeminiError("System"))


class GeminiAdapter:
    def __init__(self, services: Services, routes: list[Route] | None = None, *,
                 limiter: RateLimiter | None = None) -> None:
        self.services = services
        settings = services.settings
        self.sandbox = bool(settings.sandbox)
        self.limiter = BurstLimiter(limiter or RateLimiter(settings.redis_url, settings.rate_limit_factor))
        self.routes = list(routes if routes is not None else ALL)
        keys = services.gemini_keys
        self._key_lookups: SingleFlight[str, GeminiAuthKey | None] = SingleFlight(
            lambda api_key: services.db.read_twice(lambda: run_in_threadpool(keys.lookup_for_auth, api_key)))
        self.trusted = settings.trusted_proxies
        self.max_body = settings.max_body_bytes

    # -- the pipeline ---------------------------------------------------------------------

    async def _public(self, route: Route, ip: str) -> Response:
        if not await self.limiter.admit(PUBLIC, "gemini", "public", ip):
            raise GeminiError("RateLimit")
        assert route.public is not None
        return json_response(await run_in_threadpool(route.public, self.services))

    def _server_micros(self, nonce: auth.Nonce) -> int | None:
        """``None`` when a time-based nonce is fresh, else the server time (us) to report. Business
        time counts; in the sandbox the wall clock does too, since clients sign with their host's
        clock while business time may have been moved (as the OKX adapter does)."""
        clock = self.services.clock
        wall = epoch_us(clock.wall())
        if auth.in_window(nonce, wall):
            return None
        if not self.sandbox:
            return wall
        now = epoch_us(clock.now())
        return None if auth.in_window(nonce, now) else now

    async def _key(self, api_key: str) -> GeminiAuthKey:
        keys = self.services.gemini_keys
        found: GeminiAuthKey | None = None
        if len(api_key) <= auth.MAX_API_KEY:
            hit, found = keys.cached_auth_key(api_key)
            if not hit:  # only a cache miss needs the database (and so a worker thread), once per key at a time
                found = await self._key_lookups.get(api_key)
        if found is None or found.key.revoked_at is not None:
            raise GeminiError("InvalidApiKey")
        return found

    async def _authenticate(self, route: Route, headers: dict[str, str], ip: str) -> tuple[GeminiAuthKey, Payload]:
        h = auth.read_headers(headers)
        found = await self._key(h.api_key)
        if not auth.signature_ok(found.secret, h.payload, h.signature):
            raise GeminiError("InvalidSignature")
        values = auth.decode_payload(h.payload)
        auth.check_request(values, route.path)
        nonce = auth.parse_nonce(values)
        if found.key.time_based_nonce:
            server = self._server_micros(nonce)
            if server is not None:
                raise auth.outside_window(nonce, server // 1_000_000)
        if not await run_in_threadpool(self.services.gemini_keys.consume_nonce, found.key.id, nonce.micros):
            raise auth.not_increased(nonce)
        # The nonce is spent from here on, whatever the outcome.
        if not ip_allowed(found.key.ips, ip):
            raise GeminiError("RemoteAddressForbidden", f"IP address {ip} is not allowed for this API key")
        assert route.roles is not None
        auth.check_roles(route.roles, found.key.roles, found.key.api_key)
        if not await self.limiter.admit(PRIVATE, "gemini", "private", str(found.key.id)):
            raise GeminiError("RateLimit")
        return found, Payload(values)

    def _run(self, route: Route, found: GeminiAuthKey, payload: Payload) -> object:
        """On a worker thread: the account, then the endpoint (fields, service call, reply)."""
        account = payload.get("account")
        if account is not None and not (isinstance(account, str) and len(account) <= 64 and account.isprintable()):
            raise GeminiError("InvalidAccountName", "The payload field 'account' must be an account name "
                                                    "(at most 64 printable characters)")
        user = self.services.gemini_keys.resolve_account(found, account)
        assert route.private is not None
        return route.private(Call(self.services, payload, found, user))

    async def _private(self, route: Route, request: Request, ip: str) -> Response:
        # ASGI servers give header names lower-cased.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        found, payload = await self._authenticate(route, headers, ip)
        try:
            data = await run_in_threadpool(self._run, route, found, payload)
        except DomainError as exc:
            raise from_domain(exc) from None
        return json_response(data)

    async def _drain(self, request: Request) -> None:
        """Read (and drop) the body so the connection stays usable: the protocol ignores it."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                return

    def endpoint(self, route: Route) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            await self._drain(request)
            ip = client_ip(request, self.trusted)
            if route.roles is None:
                return await self._public(route, ip)
            return await self._private(route, request, ip)

        return handle

    def install(self, app: Starlette, prefix: str = PREFIX) -> None:
        """Answer everything under ``prefix`` through one route at the front of ``app``'s routing
        table, dispatching on the exact path and method in this adapter's own table."""
        table: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
        for route in self.routes:
            table.setdefault(route.path, {})[route.method] = self.endpoint(route)

        async def dispatch(request: Request) -> Response:
            path, method = request.scope["path"], request.scope["method"]
            try:
                endpoint = table.get(path, {}).get(method)
                if endpoint is None:
                    raise endpoint_not_found(path)
                if self.services.in_maintenance():
                    raise GeminiError("Maintenance")
                return await endpoint(request)
            except GeminiError as err:
                return error_response(err)
            except Exception as exc:  # answered here, so the connection stays open
                if unavailable(exc):
                    log.warning("database_unavailable", path=path[:128], error=type(exc).__name__)
                    return error_response(GeminiError("System", UNAVAILABLE_MSG, status=503))
                log.exception("unhandled", path=path[:128], error=type(exc).__name__)
                return unhandled_error()

        every_method = AnyMethod(dispatch)  # every method reaches the dispatch (an unknown one: EndpointNotFound)
        app.router.routes[0:0] = [StarletteRoute(prefix + "/{rest:path}", every_method),
                                  StarletteRoute(prefix, every_method)]


def install(app: Starlette, services: Services, limiter: RateLimiter | None = None) -> GeminiAdapter:
    """Install the Gemini adapter on ``app`` (``/v1``); returns it."""
    adapter = GeminiAdapter(services, limiter=limiter)
    adapter.install(app)
    return adapter
