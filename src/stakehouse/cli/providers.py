"""``stakehouse providers|prices|gemini-keys ...``: provider staking, USD prices, Gemini API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stakehouse import errors as dom
from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.providers import (
    account_balance_out,
    gemini_key_out,
    parse_decimal,
    price_out,
    provider_out,
    publish_bps,
    run_out,
)
from stakehouse.operator.providers import product_out as provider_product_out

providers_app = typer.Typer(help="Provider staking (Gemini-style): providers, products, rates.", no_args_is_help=True)
prices_app = typer.Typer(help="USD prices (for deposit limits and interest history).", no_args_is_help=True)
gemini_keys_app = typer.Typer(help="Gemini API keys (roles, nonce mode, scope, bound IPs).", no_args_is_help=True)


@providers_app.command("create")
def providers_create(name: str, provider_id: Annotated[str | None, typer.Option("--id", help="A UUID.")] = None,
                     db: DbOpt = None) -> None:
    """Register a staking provider (its UUID is generated unless given)."""
    s = services_for(db)
    run_command(lambda: print_json(provider_out(s.provider_staking.create_provider(name, provider_id))))


@providers_app.command("list")
def providers_list(db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([provider_out(p) for p in s.provider_staking.providers()]))


@providers_app.command("products")
def providers_products(db: DbOpt = None) -> None:
    """Every product (provider, currency) with every setting; null = unlimited."""
    s = services_for(db)
    run_command(lambda: print_json([provider_product_out(p) for p in s.provider_staking.products()]))


@providers_app.command("offer")
def providers_offer(provider_id: str, ccy: str,
                    setting: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable.")] = None,
                    db: DbOpt = None) -> None:
    """Offer CCY with a provider, or change settings, e.g. `--setting unstake_mode=queued`
    (money as decimal text, "none" = unlimited, true/false, integers)."""
    s = services_for(db)

    def go() -> None:
        changes: dict[str, Any] = {}
        for item in setting or []:
            name, _, text = (part.strip() for part in item.partition("="))
            low = text.lower()
            if name in ("precision", "unbonding_days"):
                if not (low.isascii() and low.isdigit() and len(low) <= 9):
                    raise dom.InvalidParameter(name, "an integer")
                changes[name] = int(low)
            else:
                changes[name] = None if low == "none" else True if low == "true" else False if low == "false" else text
        print_json(provider_product_out(s.provider_staking.set_product(provider_id, ccy, changes)))

    run_command(go)


@providers_app.command("rate")
def providers_rate(provider_id: str, ccy: str, day: str, rate: str, db: DbOpt = None) -> None:
    """Publish the simple annual rate in basis points from accrual DAY (ISO date) on."""
    s = services_for(db)
    run_command(lambda: print_json(publish_bps(s, provider_id, ccy, day, rate)))


@providers_app.command("runs")
def providers_runs(limit: int = 30, db: DbOpt = None) -> None:
    """The interest runs, newest day first."""
    s = services_for(db)
    run_command(lambda: print_json([run_out(r) for r in s.provider_staking.accrual_runs(limit)]))


@providers_app.command("balances")
def providers_balances(uid: str, db: DbOpt = None) -> None:
    """A user's staking balances per provider, with what is being paid out."""
    s = services_for(db)
    run_command(lambda: print_json([account_balance_out(b) for b in s.provider_staking.account_balances(uid)]))


@prices_app.command("set")
def prices_set(ccy: str, price: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(price_out(s.provider_staking.set_price(ccy, parse_decimal("price", price)))))


@prices_app.command("list")
def prices_list(db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([price_out(p) for p in s.provider_staking.prices()]))


@gemini_keys_app.command("create")
def gemini_keys_create(
    uid: str,
    scope: Annotated[str, typer.Option(help="account or master")] = "account",
    role: Annotated[list[str] | None, typer.Option(help="Trader, FundManager, Auditor, Administrator.")] = None,
    time_based: Annotated[bool, typer.Option("--time-based", help="Nonces are Unix seconds within 30 s.")] = False,
    ip: Annotated[list[str] | None, typer.Option(help="Bound IP or CIDR, repeatable.")] = None,
    label: str = "",
    db: DbOpt = None,
) -> None:
    """Create a Gemini API key; the secret is shown this once."""
    s = services_for(db)

    def go() -> None:
        key, secret = s.gemini_keys.create_key(uid, scope=scope, roles=role or ["Trader"], time_based_nonce=time_based,
                                               ips=ip or [], label=label)
        print_json({**gemini_key_out(key), "secret": secret})

    run_command(go)


@gemini_keys_app.command("list")
def gemini_keys_list(uid: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json([gemini_key_out(k) for k in s.gemini_keys.list_keys(uid)]))


@gemini_keys_app.command("revoke")
def gemini_keys_revoke(api_key: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(gemini_key_out(s.gemini_keys.revoke_key(api_key))))
