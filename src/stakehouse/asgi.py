"""ASGI entry point for uvicorn workers: settings come from the environment."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from stakehouse.app import create_app
from stakehouse.config import load_settings
from stakehouse.logging import configure_logging
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)


def job_loop(services: Services, stop: threading.Event) -> None:
    """Run due jobs every ``job_poll_seconds`` until stopped (exactly-once across processes)."""
    while not stop.wait(services.settings.job_poll_seconds):
        try:
            services.runner.run_due()
        except Exception:  # keep polling; the failed period is retried next time
            log.exception("job_loop_error")


def create() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    services = Services(settings, migrate=False)
    token = settings.admin_token
    if not token:
        raise SystemExit("STAKEHOUSE_ADMIN_TOKEN is required")
    app = create_app(services, token)
    stop = threading.Event()
    app_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        thread = None
        if services.settings.sandbox:
            thread = threading.Thread(target=job_loop, args=(services, stop), daemon=True, name="jobs")
            thread.start()
        async with app_lifespan(app_):
            yield
        stop.set()
        if thread:
            thread.join(timeout=5)
        services.close()

    app.router.lifespan_context = lifespan
    return app
