"""``stakehouse``: the server, the job worker and the operator's commands (over the same services).

One Typer app; a module per area. ``sandbox.py`` is the sandbox's demo bootstrap and banner."""

from __future__ import annotations

import typer

from stakehouse.cli import server
from stakehouse.cli.broker import broker_app
from stakehouse.cli.chain import chain_app
from stakehouse.cli.clock import clock_app
from stakehouse.cli.dcd import dcd_app
from stakehouse.cli.jobs import jobs_app
from stakehouse.cli.keys import keys_app
from stakehouse.cli.market import credits_app, fee_levels_app, market_app
from stakehouse.cli.oauth import oauth_app
from stakehouse.cli.providers import gemini_keys_app, prices_app, providers_app
from stakehouse.cli.rebates import rebates_app
from stakehouse.cli.staking import staking_app
from stakehouse.cli.users import users_app
from stakehouse.cli.withdrawals import withdrawals_app

app = typer.Typer(help="Stakehouse: Earn & Broker backend (OKX v5 / Gemini REST).", no_args_is_help=True)
for command in (server.serve, server.worker, server.migrate, server.audit, server.maintenance):
    app.command()(command)
for name, sub in (("users", users_app), ("keys", keys_app), ("clock", clock_app), ("staking", staking_app),
                  ("providers", providers_app), ("prices", prices_app), ("gemini-keys", gemini_keys_app),
                  ("broker", broker_app), ("chain", chain_app), ("withdrawals", withdrawals_app),
                  ("market", market_app), ("fee-levels", fee_levels_app), ("credits", credits_app),
                  ("rebates", rebates_app), ("dcd", dcd_app), ("oauth", oauth_app), ("jobs", jobs_app)):
    app.add_typer(sub, name=name)


def main() -> None:
    app()


__all__ = ["app", "main"]
