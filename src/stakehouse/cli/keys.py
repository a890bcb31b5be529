"""``stakehouse keys ...``: OKX API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.accounts import key_out, new_key_out

keys_app = typer.Typer(help="OKX API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(uid: str, perm: Annotated[list[str] | None, typer.Option(help="read_only, trade, withdraw")] = None,
                ip: Annotated[list[str] | None, typer.Option()] = None, label: str = "",
                passphrase: str | None = None, db: DbOpt = None) -> None:
    """Create an OKX API key; secretKey and passphrase are shown this once."""
    s = services_for(db)
    run_command(lambda: print_json(new_key_out(s.accounts.create_key(uid, perms=perm or ["read_only"], ips=ip or [],
                                                                     label=label, passphrase=passphrase))))


@keys_app.command("list")
def keys_list(uid: str, db: DbOpt = None) -> None:
    print_json([key_out(k) for k in services_for(db).accounts.list_keys(uid)])


@keys_app.command("revoke")
def keys_revoke(api_key: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(key_out(s.accounts.revoke_key(api_key))))


@keys_app.command("freeze")
def keys_freeze(api_key: str, db: DbOpt = None) -> None:
    """Freeze an OKX key: its requests get 50100 until it is unfrozen (other workers follow within 2 s)."""
    s = services_for(db)
    run_command(lambda: print_json(key_out(s.accounts.set_key_frozen(api_key, True))))


@keys_app.command("unfreeze")
def keys_unfreeze(api_key: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(key_out(s.accounts.set_key_frozen(api_key, False))))
