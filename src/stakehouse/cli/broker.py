"""``stakehouse broker ...``: ND brokers, their levels and sub-accounts (operator commands)."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.broker import broker_out, lookup_out, parse_at, setting_out, sub_out

broker_app = typer.Typer(help="Non-disclosed brokers: mark, level, sub-accounts, fee rates.", no_args_is_help=True)


@broker_app.command("set")
def broker_set(
    uid: str,
    level: Annotated[int | None, typer.Option(help="Broker level 1..5 (lv1 when first marked).")] = None,
    max_sub_accts: Annotated[int | None, typer.Option(help="Override of the level's maximum sub-accounts.")] = None,
    clear_max: Annotated[bool, typer.Option(help="Drop the override (the level's figure applies).")] = False,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="Enable or disable.")] = None,
    db: DbOpt = None,
) -> None:
    """Mark a master account as ND broker, or change its level, limit override or state."""
    s = services_for(db)

    def go() -> None:
        s.broker.set_broker(uid, level=level, max_sub_accts=max_sub_accts, clear_max=clear_max, enabled=enabled)
        print_json(broker_out(s.broker.get_broker(uid)))

    run_command(go)


@broker_app.command("list")
def broker_list(db: DbOpt = None) -> None:
    """Every broker with its level, limit and number of live sub-accounts."""
    s = services_for(db)
    run_command(lambda: print_json([broker_out(b) for b in s.broker.list_brokers()]))


@broker_app.command("sub-accounts")
def broker_subs(uid: str, include_deleted: bool = False, db: DbOpt = None) -> None:
    """A broker's sub-accounts (both levels), oldest first."""
    s = services_for(db)
    run_command(lambda: print_json([sub_out(x) for x in s.broker.all_subs(uid, include_deleted=include_deleted)]))


@broker_app.command("fee-history")
def broker_fee_history(uid: str, db: DbOpt = None) -> None:
    """Every trading-fee change a broker set, oldest first."""
    s = services_for(db)

    def go() -> None:
        s.broker.get_broker(uid)
        print_json([setting_out(x) for x in s.broker.fee_history(uid)])

    run_command(go)


@broker_app.command("fee-rate")
def broker_fee_rate(uid: str, inst_type: str = "SPOT", quote_ccy_type: str = "", mgn_type: str = "",
                    at: Annotated[str, typer.Option(help="Unix ms or ISO 8601 with zone; default now.")] = "",
                    db: DbOpt = None) -> None:
    """The fee change that applies to a sub-account at a time, and the effective rates."""
    s = services_for(db)
    run_command(lambda: print_json(lookup_out(s.broker.fee_rate_at(
        uid, inst_type=inst_type, quote_ccy_type=quote_ccy_type, mgn_type=mgn_type, at=parse_at(at)))))
