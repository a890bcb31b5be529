"""``stakehouse market|fee-levels|credits ...``: the spot market's instruments and index prices,
fee levels and contract credits."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.trading import (
    credit_out,
    grant_credit,
    level_out,
    markets,
    set_instrument,
    set_level,
    set_path,
    set_price,
)

market_app = typer.Typer(help="Spot market: index price paths, pins and pushes.", no_args_is_help=True)
fee_levels_app = typer.Typer(help="Spot fee levels (Lv1, VIP1..VIP8) and accounts' levels.", no_args_is_help=True)
credits_app = typer.Typer(help="Contract credits (fee vouchers) of ND brokers' sub-accounts.", no_args_is_help=True)


@market_app.command("list")
def market_list(db: DbOpt = None) -> None:
    """Every instrument's price path settings and its index price now."""
    s = services_for(db)
    run_command(lambda: print_json(markets(s)))


@market_app.command("set")
def market_set(inst_id: str,
               vol: Annotated[str | None, typer.Option(help="Annual volatility, e.g. 0.6.")] = None,
               drift: Annotated[str | None, typer.Option(help="Annual drift, e.g. 0.05.")] = None,
               seed: Annotated[str | None, typer.Option(help="The walk's seed.")] = None,
               walk: Annotated[bool | None, typer.Option("--walk/--no-walk", help="Sandbox: move the price.")] = None,
               spread_bp: Annotated[str | None, typer.Option(help="Book spread per level, basis points.")] = None,
               book_levels: Annotated[int | None, typer.Option(help="Book levels per side.")] = None,
               level_sz: Annotated[str | None, typer.Option(help="Size of the first book level.")] = None,
               db: DbOpt = None) -> None:
    """Change an instrument's walk or synthetic book."""
    s = services_for(db)
    given = {"vol": vol, "drift": drift, "seed": seed, "walk": walk, "spreadBp": spread_bp,
             "bookLevels": book_levels, "levelSz": level_sz}
    run_command(lambda: print_json(set_path(s, inst_id, {k: v for k, v in given.items() if v is not None})))


INSTRUMENT_HELP = "NAME=VALUE: baseCcy, quoteCcy, tickSz, lotSz, minSz, maxSz, state, startPx (repeatable)."


@market_app.command("instrument")
def market_instrument(inst_id: str,
                      setting: Annotated[list[str] | None, typer.Option(help=INSTRUMENT_HELP)] = None,
                      db: DbOpt = None) -> None:
    """List a spot instrument or change one, e.g. `--setting baseCcy=XRP --setting quoteCcy=USDT
    --setting tickSz=0.0001 --setting lotSz=0.01 --setting minSz=1 --setting startPx=0.5`."""
    s = services_for(db)
    values = dict(item.partition("=")[::2] for item in setting or [])
    run_command(lambda: print_json(set_instrument(s, inst_id, {k.strip(): v.strip() for k, v in values.items()})))


@market_app.command("price")
def market_price(inst_id: str, px: str, db: DbOpt = None) -> None:
    """Set the index price now (sandbox: a pin the walk continues from; production: a push)."""
    s = services_for(db)
    run_command(lambda: print_json(set_price(s, inst_id, px)))


@fee_levels_app.command("list")
def fee_levels_list(db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([level_out(*lv) for lv in s.trading.fee_levels()]))


@fee_levels_app.command("set")
def fee_levels_set(level: str, taker: str, maker: str, db: DbOpt = None) -> None:
    """Set a level's base taker and maker rates (fractions: 0.001 is 0.1 %)."""
    s = services_for(db)
    run_command(lambda: print_json(set_level(s, level, taker, maker)))


@fee_levels_app.command("assign")
def fee_levels_assign(uid: str, level: str, db: DbOpt = None) -> None:
    """Put an account on a fee level."""
    s = services_for(db)
    run_command(lambda: print_json({"uid": uid, "level": s.trading.set_account_level(uid, level)}))


@credits_app.command("grant")
def credits_grant(uid: str, amt: str,
                  activate_exp_time: Annotated[str, typer.Option(help="Unix ms: activate before this.")],
                  valid_period: Annotated[str, typer.Option(help="ms of use after activation.")],
                  db: DbOpt = None) -> None:
    """Grant AMT USDT of trading-fee credit to an ND broker's sub-account."""
    s = services_for(db)
    run_command(lambda: print_json(grant_credit(s, uid, amt, activate_exp_time, valid_period)))


@credits_app.command("list")
def credits_list(uid: Annotated[str, typer.Option(help="Only this account's.")] = "",
                 state: Annotated[str, typer.Option(help="unactivated, activated, expired or invalid.")] = "",
                 db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([credit_out(c) for c in s.credits.list(uid, state=state, limit=1000)]))


@credits_app.command("invalidate")
def credits_invalidate(credit_id: int, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(credit_out(s.credits.invalidate(credit_id))))
