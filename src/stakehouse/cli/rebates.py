"""``stakehouse rebates ...``: ND rebate ratios, monthly caps, VIP fee-rate mode, records; FD
brokers (set-up, expired identification, affiliates, records)."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.rebates import (
    fd_out,
    fd_record_out,
    record_out,
    set_cap,
    set_ratio,
    set_up_fd,
    settings_out,
)

rebates_app = typer.Typer(help="Broker rebates: ND ratios, caps, VIP fee-rate mode, daily records; FD brokers.",
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


@rebates_app.command("fd-set")
def rebates_fd_set(uid: str, ratio: str, client_ratio: Annotated[str, typer.Option("--client-ratio")] = "0",
                   types: Annotated[str, typer.Option(help="api, oauth or api,oauth")] = "api",
                   code: Annotated[str | None, typer.Option(help="16 letters/digits; omit: keep or generate")] = None,
                   db: DbOpt = None) -> None:
    """Make master account UID an FD broker earning RATIO of its tagged fills' net fees (or change it)."""
    s = services_for(db)
    run_command(lambda: print_json(set_up_fd(s, uid, code=code, types=types.split(","), ratio=ratio,
                                             client_ratio=client_ratio)))


@rebates_app.command("fd-list")
def rebates_fd_list(db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([fd_out(b) for b in s.fd_brokers.all()]))


@rebates_app.command("fd-expired")
def rebates_fd_expired(uid: str, expired: Annotated[bool, typer.Option("--expired/--valid")] = True,
                       db: DbOpt = None) -> None:
    """Mark an FD broker's identification expired (it earns nothing) or valid again."""
    s = services_for(db)
    run_command(lambda: print_json(fd_out(s.fd_brokers.set_expired(uid, expired))))


@rebates_app.command("fd-affiliate")
def rebates_fd_affiliate(broker_uid: str, uid: str, on: Annotated[bool, typer.Option("--on/--off")] = True,
                         db: DbOpt = None) -> None:
    """Link user UID to the FD broker as its invitee (affiliated), or unlink it."""
    s = services_for(db)
    run_command(lambda: print_json({"uid": broker_uid, "user": uid,
                                    "affiliated": s.fd_brokers.affiliate(broker_uid, uid, on)}))


@rebates_app.command("fd-records")
def rebates_fd_records(broker_uid: str, limit: int = 100, db: DbOpt = None) -> None:
    """An FD broker's daily records (per user and broker type), newest first."""
    s = services_for(db)
    run_command(lambda: print_json([fd_record_out(r) for r in s.fd_brokers.records(broker_uid, limit)]))
