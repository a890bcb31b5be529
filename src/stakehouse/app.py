"""The ASGI application: OKX v5 under ``/api/v5``, admin under ``/admin``, health and metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from stakehouse import __version__
from stakehouse.api.admin.routes import build_admin
from stakehouse.api.okx import routes as okx_routes
from stakehouse.api.okx.app import OkxAdapter
from stakehouse.services import Services

REQUESTS = Counter("stakehouse_http_requests_total", "HTTP requests", ["surface", "status"])
LATENCY = Histogram("stakehouse_http_request_seconds", "HTTP request latency", ["surface"])


def _surface(path: str) -> str:
    return "okx" if path.startswith("/api/v5") else "admin" if path.startswith("/admin") else "other"


def create_app(services: Services, admin_token: str) -> FastAPI:
    app = FastAPI(title="Stakehouse admin API", version=__version__, docs_url="/admin/docs",
                  openapi_url="/admin/openapi.json", redoc_url=None)
    app.state.services = services

    @app.middleware("http")
    async def metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        surface = _surface(request.url.path)
        started = time.perf_counter()
        response = await call_next(request)
        LATENCY.labels(surface).observe(time.perf_counter() - started)
        REQUESTS.labels(surface, str(response.status_code)).inc()
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        with services.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        return JSONResponse({"status": "ok", "sandbox": services.settings.sandbox})

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/bare", include_in_schema=False)
    async def bare() -> Response:
        """A do-nothing endpoint: the benchmark's baseline for this server's own overhead."""
        return Response('{"code":"0","msg":"","data":[]}', media_type="application/json")

    build_admin(app, services, admin_token)
    app.mount("/api/v5", OkxAdapter(services, okx_routes.ALL).asgi())
    return app
