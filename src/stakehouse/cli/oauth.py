"""``stakehouse oauth ...``: OAuth clients of FD brokers."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.oauth import client_out, register

oauth_app = typer.Typer(help="OAuth clients of FD OAuth brokers.", no_args_is_help=True)


@oauth_app.command("client-create")
def oauth_client_create(
    broker_uid: str, name: str,
    redirect_uri: Annotated[list[str], typer.Option("--redirect-uri", help="Exact redirect URI (repeatable)")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="read_only and/or trade")] = None,
    ip: Annotated[list[str] | None, typer.Option("--ip", help="The broker server's IP allow-list")] = None,
    fast_api: Annotated[bool, typer.Option("--fast-api")] = False,
    public: Annotated[bool, typer.Option("--public", help="No secret: PKCE only (mobile apps)")] = False,
    db: DbOpt = None,
) -> None:
    """Register an OAuth client for FD broker BROKER_UID; prints its secret this once."""
    s = services_for(db)
    run_command(lambda: print_json(register(s, broker_uid, name=name, redirect_uris=redirect_uri,
                                            scopes=scope or ["read_only", "trade"], ips=ip or [],
                                            fast_api=fast_api, public=public)))


@oauth_app.command("client-list")
def oauth_client_list(broker_uid: str = "", db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([client_out(c) for c in s.oauth.clients(broker_uid or None)]))


@oauth_app.command("client-delete")
def oauth_client_delete(client_id: str, db: DbOpt = None) -> None:
    """Retire a client: every grant made to it ends."""
    s = services_for(db)

    def go() -> None:
        s.oauth.revoke_client(client_id)
        typer.echo("deleted")

    run_command(go)
