"""``stakehouse clock ...``: the sandbox clock."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer

from stakehouse import errors as dom
from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.platform import advance_out, clock_out
from stakehouse.sandbox.control import MAX_ADVANCE

clock_app = typer.Typer(help="The sandbox clock.", no_args_is_help=True)


@clock_app.command("show")
def clock_show(db: DbOpt = None) -> None:
    s = services_for(db)
    print_json(clock_out(s))


@clock_app.command("freeze")
def clock_freeze(db: DbOpt = None) -> None:
    """Stop the sandbox clock where it is (only `clock advance` moves it until `clock resume`)."""
    s = services_for(db)

    def go() -> None:
        s.pin_clock(running=False)
        print_json(clock_out(s))

    run_command(go)


@clock_app.command("resume")
def clock_resume(db: DbOpt = None) -> None:
    """Let the sandbox clock run with the wall clock again, from where it stands."""
    s = services_for(db)

    def go() -> None:
        s.pin_clock(running=True)
        print_json(clock_out(s))

    run_command(go)


@clock_app.command("advance")
def clock_advance(
    days: Annotated[int | None, typer.Option(min=0, max=MAX_ADVANCE.days)] = None,
    hours: Annotated[int | None, typer.Option(min=0, max=MAX_ADVANCE.days * 24)] = None,
    seconds: Annotated[int | None, typer.Option(min=0, max=int(MAX_ADVANCE.total_seconds()))] = None,
    to: Annotated[str, typer.Option(help="A moment with a time zone, e.g. 2027-01-01T00:00:00Z.")] = "",
    db: DbOpt = None,
) -> None:
    """Move the sandbox clock forward (at most 3660 days at once) and run every job that falls due
    (sandbox only). Progress goes to stderr; --days 0 runs what is due now."""
    s = services_for(db)
    started = time.monotonic()
    last: list[float] = []

    def progress(reached: dt.datetime, runs: int) -> None:
        """A line after the first day, then at most one a second."""
        now = time.monotonic()
        if not last or now - last[0] >= 1.0:
            last[:] = [now]
            typer.echo(f"  at {reached.isoformat()}: {runs} job runs, {now - started:.0f} s", err=True)

    def go() -> None:
        try:
            target = dt.datetime.fromisoformat(to.replace("Z", "+00:00")) if to else None
        except ValueError:
            raise dom.InvalidParameter("to", "ISO 8601 with a time zone, e.g. 2027-01-01T00:00:00Z") from None
        given = [v for v in (days, hours, seconds) if v is not None]
        by = dt.timedelta(days=days or 0, hours=hours or 0, seconds=seconds or 0) if given else None
        print_json(advance_out(s.clock.now, s.advance_clock(to=target, by=by, progress=progress)))

    run_command(go)
