"""What every ``stakehouse`` command module shares: the services, JSON output, error exit."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from stakehouse import errors as dom
from stakehouse.config import load_settings
from stakehouse.logging import configure_logging
from stakehouse.wiring import Services

DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: STAKEHOUSE_DATABASE_URL).")]


def services_for(db: str | None = None) -> Services:
    """The services over the configured database, in the mode that database was created in."""
    overrides: dict[str, Any] = {}
    if db:
        overrides["database_url"] = db
    settings = load_settings(**overrides)
    configure_logging("WARNING", settings.log_format)
    return Services(settings)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def run_command(fn: Any) -> None:
    """Run ``fn``; a domain error becomes ``error: ...`` on stderr and exit code 2."""
    try:
        fn()
    except dom.DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
