"""``stakehouse serve|worker|migrate|audit|maintenance``: the server, the job worker and the platform commands."""

from __future__ import annotations

import os
import threading
from typing import Annotated, Any

import typer
import uvicorn

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.config import load_settings
from stakehouse.logging import configure_logging
from stakehouse.wiring import Services


def serve(
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Embedded SQLite, demo users, movable clock.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    db: DbOpt = None,
) -> None:
    """Run the API server (migrations are applied first)."""
    overrides: dict[str, Any] = {"sandbox": sandbox} if sandbox else {}
    if db:
        overrides["database_url"] = db
    configured = load_settings(**overrides)
    configure_logging(configured.log_level, configured.log_format)
    services = Services(configured)
    settings = services.settings
    env = {"STAKEHOUSE_SANDBOX": "true" if settings.sandbox else "false",
           "STAKEHOUSE_DATABASE_URL": settings.database_url}
    shown = ""
    if settings.sandbox:
        from stakehouse.cli.sandbox import banner, bootstrap, credentials_file

        creds = bootstrap(services)
        if settings.admin_token:  # a configured token wins over the one generated at the first start
            creds["adminToken"] = settings.admin_token
        env["STAKEHOUSE_ADMIN_TOKEN"] = creds["adminToken"]
        if not settings.server_key:
            from stakehouse.wiring import resolve_server_key

            env["STAKEHOUSE_SERVER_KEY"] = resolve_server_key(settings)
        shown = banner(creds, f"http://{host or settings.host}:{port or settings.port}",
                       rate_limit_factor=settings.rate_limit_factor, credentials_file=credentials_file(services))
    elif not settings.admin_token:
        raise typer.BadParameter("STAKEHOUSE_ADMIN_TOKEN is required outside the sandbox")
    services.close()
    os.environ.update(env)
    if shown:  # the last thing printed before the server runs (uvicorn itself logs only warnings)
        typer.echo(shown)
    uvicorn.run("stakehouse.asgi:create", factory=True, host=host or settings.host, port=port or settings.port,
                workers=workers, log_level="warning", access_log=False)


def worker(
    db: DbOpt = None,
    once: Annotated[bool, typer.Option(help="Run what is due, then exit.")] = False,
    metrics_port: Annotated[int, typer.Option(
        min=0, max=65535, help="Serve Prometheus metrics (the chunked runs' progress) on this port; 0: none.")] = 0,
    metrics_host: Annotated[str, typer.Option(help="The address the metrics listen on.")] = "127.0.0.1",
) -> None:
    """Run periodic jobs (production): every due period of every job, exactly once."""
    services = services_for(db)
    if once:
        print_json([r.__dict__ for r in services.runner.run_due()])
        return
    from stakehouse.asgi import job_loop

    if metrics_port:
        # The chunks of the daily runs are done here, so their metrics live in this process:
        # stakehouse_job_chunks_done_total, stakehouse_job_chunk_seconds, ..._chunk_retries_total.
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)

    stop = threading.Event()
    services.runner.run_due()
    try:
        job_loop(services, stop)
    except KeyboardInterrupt:
        stop.set()


def migrate(db: DbOpt = None) -> None:
    """Apply database migrations."""
    services_for(db).close()
    typer.echo("migrations applied")


def audit(db: DbOpt = None) -> None:
    """Check the books: entries balance, cached balances equal postings, no negative user balance."""
    report = services_for(db).audit()
    for check in report.checks:
        typer.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.checked} checked, "
                   f"{len(check.violations)} violations")
        for v in check.violations[:50]:
            typer.echo(f"    {v}")
    if not report.ok:
        raise typer.Exit(1)


def maintenance(state: Annotated[str, typer.Argument(help="on, off or show")] = "show", db: DbOpt = None) -> None:
    """Maintenance mode: while on, the OKX and Gemini APIs answer 503 (the admin API and jobs go on)."""
    if state not in ("on", "off", "show"):
        typer.echo("error: on, off or show", err=True)
        raise typer.Exit(2)
    s = services_for(db)
    run_command(lambda: print_json({"on": s.in_maintenance() if state == "show" else s.set_maintenance(state == "on")}))
