"""``stakehouse users ...``: users and sub-accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stakehouse import errors as dom
from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.ledger.rules import FUNDING, TRADING
from stakehouse.money import AmountError, parse_amount
from stakehouse.operator.accounts import balance_out, posting_out, user_out
from stakehouse.operator.funding import deposit_out

users_app = typer.Typer(help="Users and sub-accounts.", no_args_is_help=True)


@users_app.command("create")
def users_create(env: str = "live", label: str = "", kyc_level: int = 0,
                 accept_terms: Annotated[list[str] | None, typer.Option()] = None, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(user_out(s.accounts.create_user(env=env, label=label, kyc_level=kyc_level,
                                                                   accept_terms=tuple(accept_terms or ())))))


@users_app.command("sub-create")
def users_sub_create(parent_uid: str, sub_acct: str, label: str = "", db: DbOpt = None) -> None:
    """Create a sub-account under a master (or under a first-level sub-account)."""
    s = services_for(db)
    run_command(lambda: print_json(user_out(s.accounts.create_sub_account(parent_uid=parent_uid, sub_name=sub_acct,
                                                                          label=label))))


@users_app.command("list")
def users_list(master_uid: str = "", db: DbOpt = None) -> None:
    print_json([user_out(u) for u in services_for(db).accounts.list_users(master_uid=master_uid or None)])


@users_app.command("show")
def users_show(uid: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(user_out(s.accounts.get(uid))))


@users_app.command("set-password")
def users_set_password(uid: str, login: str, db: DbOpt = None) -> None:
    """Set the user's web login and password. The password is asked for (hidden, twice), or read
    from standard input when that is not a terminal; it is stored hashed and never printed."""
    s = services_for(db)
    if sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    run_command(lambda: print_json({"uid": uid, "login": s.logins.set_password(uid, login, password)}))


@users_app.command("kyc")
def users_kyc(uid: str, level: int, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(user_out(s.accounts.set_kyc(uid, level))))


@users_app.command("accept-terms")
def users_terms(uid: str, product: str, db: DbOpt = None) -> None:
    s = services_for(db)

    def go() -> None:
        s.accounts.accept_terms(uid, product)
        typer.echo("accepted")

    run_command(go)


@users_app.command("freeze")
def users_freeze(uid: str, function: Annotated[list[str] | None, typer.Option()] = None, db: DbOpt = None) -> None:
    """Freeze a user (globally, or only the --function ones)."""
    s = services_for(db)
    run_command(lambda: print_json(user_out(s.accounts.set_frozen(uid, True, function or []))))


@users_app.command("unfreeze")
def users_unfreeze(uid: str, function: Annotated[list[str] | None, typer.Option()] = None, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(user_out(s.accounts.set_frozen(uid, False, function or []))))


@users_app.command("deposit")
def users_deposit(uid: str, ccy: str, amt: str, chain: str = "", tx_id: str = "", idempotency_key: str = "",
                  db: DbOpt = None) -> None:
    """Credit a deposit (the sandbox faucet; shown in deposit history)."""
    s = services_for(db)

    def go() -> None:
        try:
            value = parse_amount(amt, scale=18, max_amount=s.settings.max_amount)
        except AmountError as exc:
            raise dom.InvalidParameter("amt", exc.reason) from None
        print_json(deposit_out(s.chain.credit_deposit(uid, ccy.upper(), value, chain=chain, tx_id=tx_id,
                                                       idempotency_key=idempotency_key)))

    run_command(go)


@users_app.command("balances")
def users_balances(uid: str, db: DbOpt = None) -> None:
    s = services_for(db)

    def go() -> None:
        s.accounts.get(uid)
        print_json([balance_out(t, b) for t in (FUNDING, TRADING) for b in s.assets.balances(uid, t)])

    run_command(go)


@users_app.command("journal")
def users_journal(uid: str, limit: int = 50, db: DbOpt = None) -> None:
    """A user's postings, newest first."""
    s = services_for(db)
    run_command(lambda: print_json([posting_out(p) for p in s.accounts.journal(uid, limit=limit)]))
