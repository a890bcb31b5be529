"""The ASGI application: OKX v5 under ``/api/v5``, admin under ``/admin``, health and metrics."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stakehouse import __version__
from stakehouse.api.admin.routes import build_admin
from stakehouse.api.gemini import app as gemini
from stakehouse.api.okx import routes as okx_routes
from stakehouse.api.okx.app import OkxAdapter, unhandled_error
from stakehouse.services import Services

log = structlog.get_logger(__name__)

REQUESTS = Counter("stakehouse_http_requests_total", "HTTP requests", ["surface", "status"])
LATENCY = Histogram("stakehouse_http_request_seconds", "HTTP request latency", ["surface"])


def _surface(path: str) -> str:
    if path.startswith("/api/v5"):
        return "okx"
    if path == "/v1" or path.startswith("/v1/"):
        return "gemini"
    return "admin" if path.startswith("/admin") else "other"


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
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gc.freeze()
        yield
        await services.db.hot.close()  # the hot-read connections belong to this loop

    app = FastAPI(title="Stakehouse admin API", version=__version__, docs_url="/admin/docs",
                  openapi_url="/admin/openapi.json", redoc_url=None, lifespan=lifespan)
    app.state.services = services

    app.add_middleware(MetricsMiddleware)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        with services.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return JSONResponse({"status": "ok", "sandbox": services.settings.sandbox})

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    build_admin(app, services, admin_token)
    # Each adapter puts its one dispatch route at the front of the table: the last installed is
    # tried first, so the OKX hot path (after /bare) matches no other pattern before its own.
    gemini.install(app, services)
    OkxAdapter(services, okx_routes.ALL).install(app)

    async def bare(_request: Request) -> Response:
        """A do-nothing endpoint: the benchmark's baseline for this server's own overhead. It is
        the first route of all (ahead of the API), the cheapest request the server can answer."""
        return Response('{"code":"0","msg":"","data":[]}', media_type="application/json")

    app.router.routes.insert(0, Route("/bare", bare, methods=["GET"], include_in_schema=False))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled", path=request.url.path, error=type(exc).__name__)
        if request.url.path.startswith("/api/v5/"):
            return unhandled_error()
        return JSONResponse({"error": "InternalError", "message": "internal error"}, status_code=500)

    return app
