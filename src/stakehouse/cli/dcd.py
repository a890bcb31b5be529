"""``stakehouse dcd ...``: DCD series (pairs, tenors, strike ladder, sizes, quotas, volatility,
margin) and the DCD book's exposure."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.dcd import book_out, series_out, set_series

dcd_app = typer.Typer(help="Dual-currency deposits: series and the book.", no_args_is_help=True)


@dcd_app.command("series")
def dcd_series(db: DbOpt = None) -> None:
    """Every series."""
    s = services_for(db)
    run_command(lambda: print_json([series_out(x) for x in s.dcd.series()]))


SERIES_HELP = ("NAME=VALUE: tenors, strikePcts, strikeTick, callMin, callMax, callStep, callQuota, putMin, putMax, "
               "putStep, putQuota, vol, margin, enabled (true/false), uly (repeatable).")


@dcd_app.command("set-series")
def dcd_set_series(ccy: str, alt_ccy: str,
                   setting: Annotated[list[str] | None, typer.Option(help=SERIES_HELP)] = None,
                   db: DbOpt = None) -> None:
    """Create or change the series CCY/ALT_CCY, e.g. `--setting vol=0.6 --setting tenors=1,7`."""
    s = services_for(db)
    values: dict[str, object] = {}
    for item in setting or []:
        name, _, value = item.partition("=")
        name, value = name.strip(), value.strip()
        values[name] = value == "true" if name == "enabled" and value in ("true", "false") else value
    run_command(lambda: print_json(set_series(s, ccy, alt_ccy, values)))


@dcd_app.command("book")
def dcd_book(db: DbOpt = None) -> None:
    """The DCD book's exposure: open orders' notional per product and state."""
    s = services_for(db)
    run_command(lambda: print_json(book_out(s)))
