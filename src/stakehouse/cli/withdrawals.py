"""``stakehouse withdrawals ...``: list withdrawals and move them in the sandbox chain simulator."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.funding import parse_state, withdrawal_out

withdrawals_app = typer.Typer(help="Withdrawals: list, fail (sandbox chain simulator).", no_args_is_help=True)


@withdrawals_app.command("list")
def withdrawals_list(uid: Annotated[str, typer.Option(help="Only this user's withdrawals.")] = "",
                     state: Annotated[str, typer.Option(help="Only this state (e.g. 0, 1, 2, -1, -2).")] = "",
                     limit: int = 100, db: DbOpt = None) -> None:
    """Withdrawals, newest first."""
    s = services_for(db)
    run_command(lambda: print_json([withdrawal_out(w) for w in s.withdrawals.list_all(
        uid=uid, state=parse_state(state), limit=limit)]))


@withdrawals_app.command("show")
def withdrawals_show(wd_id: str, db: DbOpt = None) -> None:
    """One withdrawal."""
    s = services_for(db)
    run_command(lambda: print_json(withdrawal_out(s.withdrawals.get(wd_id))))


@withdrawals_app.command("fail")
def withdrawals_fail(wd_id: str, reason: Annotated[str, typer.Option(help="Why it failed (its note).")],
                     db: DbOpt = None) -> None:
    """Fail a withdrawal that has not succeeded yet (states 10, 0, 7, 1): state -1, funds refunded."""
    s = services_for(db)
    run_command(lambda: print_json(withdrawal_out(s.withdrawals.fail(wd_id, reason))))
