"""``stakehouse rebates ...``: ND rebate ratios, monthly caps, VIP fee-rate mode, records."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.rebates import record_out, set_cap, set_ratio, settings_out

rebates_app = typer.Typer(help="ND broker rebates: ratios, caps, VIP fee-rate mode, daily records.",
                          no_args_is_help=True)


@rebates_app.command("settings")
def rebates_settings(db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(settings_out(s)))


@rebates_app.command("ratio")
def rebates_ratio(level: int, ratio: str, db: DbOpt = None) -> None:
    """Set the share of net fees a broker of LEVEL earns back (e.g. 0.4)."""
    s = services_for(db)
    run_command(lambda: print_json(set_ratio(s, level, ratio)))


@rebates_app.command("cap")
def rebates_cap(fee_level: str, cap: Annotated[str | None, typer.Argument(help="USDT a month; omit: no cap.")] = None,
                db: DbOpt = None) -> None:
    """Set (or lift) the monthly rebate cap of a fee level (VIP4..VIP8)."""
    s = services_for(db)
    run_command(lambda: print_json(set_cap(s, fee_level, cap)))


@rebates_app.command("vip-mode")
def rebates_vip_mode(uid: str, on: Annotated[bool, typer.Option("--on/--off")] = True, db: DbOpt = None) -> None:
    """Put a sub-account in (or out of) VIP fee-rate mode: it then earns its broker nothing."""
    s = services_for(db)
    run_command(lambda: print_json({"uid": uid, "on": s.rebates.set_vip_fee_mode(uid, on)}))


@rebates_app.command("records")
def rebates_records(broker_uid: str, limit: int = 100, db: DbOpt = None) -> None:
    """A broker's daily rebate records, newest first."""
    s = services_for(db)
    run_command(lambda: print_json([record_out(r) for r in s.rebates.records(broker_uid, limit)]))
