"""The ASGI application: OKX v5 under ``/api/v5``, admin under ``/admin``, health and metrics."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import psycopg
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import exc as sa_exc
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stakehouse import __version__
from stakehouse.api import files, oauth, web
from stakehouse.api.admin.routes import build_admin
from stakehouse.api.gemini import app as gemini
from stakehouse.api.net import AnyMethod
from stakehouse.api.okx import routes as okx_routes
from stakehouse.api.okx.app import OkxAdapter, unhandled_error
from stakehouse.api.okx.ratelimit import RateLimiter
from stakehouse.db.engine import unavailable
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)

REQUESTS = Counter("stakehouse_http_requests_total", "HTTP requests", ["surface", "status"])
LATENCY = Histogram("stakehouse_http_request_seconds", "HTTP request latency", ["surface"])


def _surface(path: str) -> str:
    if path.startswith("/api/v5"):
        return "okx"
    if path == "/v1" or path.startswith("/v1/"):
        return "gemini"
    if path.startswith("/admin"):
        return "admin"
    return "other"


class AbsoluteFormTargets:
    """A request line may name the whole URL (``GET http://host/api/v5/... HTTP/1.1``, the absolute
    form every HTTP/1.1 server must accept, RFC 9112 section 3.2.2). Such a request is served as its
    path, so it reaches the same route (and the OKX envelope) as the usual origin form."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/"):
            scope = origin_form(scope)
        await self.app(scope, receive, send)


def origin_form(scope: Scope) -> Scope:
    """``scope`` with an absolute-form ``http(s)://authority/path`` target reduced to its path."""
    url = urlsplit(scope["path"])
    if url.scheme not in ("http", "https") or not url.netloc:
        return scope
    path = url.path or "/"
    raw = scope.get("raw_path") or b""
    raw_url = urlsplit(raw.decode("latin-1"))
    return {**scope, "path": path, "raw_path": (raw_url.path or "/").encode("latin-1") if raw else path.encode()}


class MetricsMiddleware:
    """Request count and latency per surface (plain ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        surface = _surface(scope["path"])
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            LATENCY.labels(surface).observe(time.perf_counter() - started)
            REQUESTS.labels(surface, str(status)).inc()


def create_app(services: Services, admin_token: str) -> FastAPI:
    # One limiter for both API adapters: one Redis connection pool, one health state.
    limiter = RateLimiter(services.settings.redis_url, services.settings.rate_limit_factor)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        prefill = services.settings.pool_prefill
        if prefill:
            opened = await run_in_threadpool(services.db.prefill, prefill)
            log.info("pools_prefilled", database=opened, redis=await limiter.prefill(prefill))
        gc.freeze()
        yield
        await services.db.hot.close()  # the hot-read connections belong to this loop

    app = FastAPI(title="Stakehouse admin API", version=__version__, docs_url="/admin/docs",
                  openapi_url="/admin/openapi.json", redoc_url=None, lifespan=lifespan)
    app.state.services = services

    app.add_middleware(MetricsMiddleware)
    app.add_middleware(AbsoluteFormTargets)

    def ping_database() -> None:
        with services.db.query() as conn:
            conn.exec_driver_sql("SELECT 1")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """``ok``; ``degraded`` (HTTP 200: still serving) while Redis is unavailable and rate limits
        are counted per process; ``unavailable`` (HTTP 503) when the database cannot answer."""
        try:
            await services.db.read_twice(lambda: run_in_threadpool(ping_database))
            database = "ok"
        except Exception as exc:
            if not unavailable(exc):
                raise
            database = "unavailable"
        rate_limits = await limiter.check()
        status = "unavailable" if database != "ok" else "degraded" if limiter.degraded else "ok"
        return JSONResponse({"status": status, "sandbox": services.settings.sandbox, "database": database,
                             "rateLimits": rate_limits}, status_code=503 if database != "ok" else 200)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    build_admin(app, services, admin_token)
    files.install(app, services)
    oauth_routes, oauth_server = oauth.routes(services)
    app.router.routes.extend(oauth_routes)
    app.router.routes.extend(web.routes(services, admin_token, limiter, oauth_server))
    # Each adapter puts its one dispatch route at the front of the table: the last installed is
    # tried first, so the OKX hot path (after /bare) matches no other pattern before its own.
    gemini.install(app, services, limiter)
    OkxAdapter(services, okx_routes.ALL, limiter=limiter).install(app)

    async def bare(_request: Request) -> Response:
        """A do-nothing endpoint: the benchmark's baseline for this server's own overhead. It is
        the first route of all (ahead of the API), the cheapest request the server can answer."""
        return Response('{"code":"0","msg":"","data":[]}', media_type="application/json")

    # The same kind of endpoint as the API adapters' (AnyMethod): the baseline is no heavier than they are.
    app.router.routes.insert(0, Route("/bare", AnyMethod(bare), include_in_schema=False))

    async def database_error(request: Request, exc: Exception) -> Response:
        """A database error outside the API adapters (which answer their own): 503 when the database
        could not answer, else a logged 500; either way the connection stays open."""
        if unavailable(exc):
            log.warning("database_unavailable", path=request.url.path[:128], error=type(exc).__name__)
            return JSONResponse({"error": "Unavailable", "message": "the database is unavailable; try again"},
                                status_code=503)
        return await crash(request, exc)

    for error in (sa_exc.SQLAlchemyError, psycopg.Error):
        app.add_exception_handler(error, database_error)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled", path=request.url.path[:128], error=type(exc).__name__)
        if request.url.path.startswith("/api/v5/"):
            return unhandled_error()
        return JSONResponse({"error": "InternalError", "message": "internal error"}, status_code=500)

    return app
