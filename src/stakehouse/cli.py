"""``stakehouse``: the server, the job worker and the operator's commands (over the same services)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from typing import Annotated, Any

import typer
import uvicorn

from stakehouse import errors as dom
from stakehouse.api.admin.providers import (
    account_balance_out,
    gemini_key_out,
    parse_decimal,
    price_out,
    provider_out,
    publish_bps,
    run_out,
)
from stakehouse.api.admin.providers import product_out as provider_product_out
from stakehouse.api.admin.routes import (
    advance_out,
    balance_out,
    clock_out,
    deposit_out,
    key_out,
    new_key_out,
    posting_out,
    user_out,
)
from stakehouse.api.admin.staking import (
    order_out,
    product_out,
    publish,
    queue_out,
    rates_out,
    rewards_out,
    runs_out,
)
from stakehouse.cli_broker import broker_app
from stakehouse.cli_chain import chain_app
from stakehouse.cli_common import DbOpt, print_json, run_command, services_for
from stakehouse.cli_withdrawals import withdrawals_app
from stakehouse.config import load_settings
from stakehouse.ledger.rules import FUNDING, TRADING
from stakehouse.logging import configure_logging
from stakehouse.money import AmountError, parse_amount
from stakehouse.sandbox.control import MAX_ADVANCE
from stakehouse.services import Services

app = typer.Typer(help="Stakehouse: Earn & Broker backend (OKX v5 / Gemini REST).", no_args_is_help=True)
users_app = typer.Typer(help="Users and sub-accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="OKX API keys.", no_args_is_help=True)
clock_app = typer.Typer(help="The sandbox clock.", no_args_is_help=True)
staking_app = typer.Typer(help="Liquid staking products, rates, queue and corrections.", no_args_is_help=True)
providers_app = typer.Typer(help="Provider staking (Gemini-style): providers, products, rates.", no_args_is_help=True)
prices_app = typer.Typer(help="USD prices (for deposit limits and interest history).", no_args_is_help=True)
gemini_keys_app = typer.Typer(help="Gemini API keys (roles, nonce mode, scope, bound IPs).", no_args_is_help=True)
for name, sub in (("users", users_app), ("keys", keys_app), ("clock", clock_app), ("staking", staking_app),
                  ("providers", providers_app), ("prices", prices_app), ("gemini-keys", gemini_keys_app),
                  ("broker", broker_app), ("chain", chain_app), ("withdrawals", withdrawals_app)):
    app.add_typer(sub, name=name)

_services = services_for
_print = print_json
_run = run_command


# -- server and worker --------------------------------------------------------------------


@app.command()
def serve(
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Embedded SQLite, demo users, movable clock.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    db: DbOpt = None,
) -> None:
    """Run the API server (migrations are applied first)."""
    overrides: dict[str, Any] = {"sandbox": sandbox} if sandbox else {}
    if db:
        overrides["database_url"] = db
    configured = load_settings(**overrides)
    configure_logging(configured.log_level, configured.log_format)
    services = Services(configured)
    settings = services.settings
    env = {"STAKEHOUSE_SANDBOX": "true" if settings.sandbox else "false",
           "STAKEHOUSE_DATABASE_URL": settings.database_url}
    shown = ""
    if settings.sandbox:
        from stakehouse.sandbox.demo import banner, bootstrap, credentials_file

        creds = bootstrap(services)
        if settings.admin_token:  # a configured token wins over the one generated at the first start
            creds["adminToken"] = settings.admin_token
        env["STAKEHOUSE_ADMIN_TOKEN"] = creds["adminToken"]
        if not settings.server_key:
            from stakehouse.services import resolve_server_key

            env["STAKEHOUSE_SERVER_KEY"] = resolve_server_key(settings)
        shown = banner(creds, f"http://{host or settings.host}:{port or settings.port}",
                       rate_limit_factor=settings.rate_limit_factor, credentials_file=credentials_file(services))
    elif not settings.admin_token:
        raise typer.BadParameter("STAKEHOUSE_ADMIN_TOKEN is required outside the sandbox")
    services.close()
    os.environ.update(env)
    if shown:  # the last thing printed before the server runs (uvicorn itself logs only warnings)
        typer.echo(shown)
    uvicorn.run("stakehouse.asgi:create", factory=True, host=host or settings.host, port=port or settings.port,
                workers=workers, log_level="warning", access_log=False)


@app.command()
def worker(db: DbOpt = None, once: Annotated[bool, typer.Option(help="Run what is due, then exit.")] = False) -> None:
    """Run periodic jobs (production): every due period of every job, exactly once."""
    services = _services(db)
    if once:
        _print([r.__dict__ for r in services.runner.run_due()])
        return
    from stakehouse.asgi import job_loop

    stop = threading.Event()
    services.runner.run_due()
    try:
        job_loop(services, stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def migrate(db: DbOpt = None) -> None:
    """Apply database migrations."""
    _services(db).close()
    typer.echo("migrations applied")


@app.command()
def audit(db: DbOpt = None) -> None:
    """Check the books: entries balance, cached balances equal postings, no negative user balance."""
    report = _services(db).audit()
    for check in report.checks:
        typer.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.checked} checked, "
                   f"{len(check.violations)} violations")
        for v in check.violations[:50]:
            typer.echo(f"    {v}")
    if not report.ok:
        raise typer.Exit(1)


# -- users ---------------------------------------------------------------------------------


@users_app.command("create")
def users_create(env: str = "live", label: str = "", kyc_level: int = 0,
                 accept_terms: Annotated[list[str] | None, typer.Option()] = None, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(user_out(s.accounts.create_user(env=env, label=label, kyc_level=kyc_level,
                                                        accept_terms=tuple(accept_terms or ())))))


@users_app.command("sub-create")
def users_sub_create(parent_uid: str, sub_acct: str, label: str = "", db: DbOpt = None) -> None:
    """Create a sub-account under a master (or under a first-level sub-account)."""
    s = _services(db)
    _run(lambda: _print(user_out(s.accounts.create_sub_account(parent_uid=parent_uid, sub_name=sub_acct,
                                                               label=label))))


@users_app.command("list")
def users_list(master_uid: str = "", db: DbOpt = None) -> None:
    _print([user_out(u) for u in _services(db).accounts.list_users(master_uid=master_uid or None)])


@users_app.command("show")
def users_show(uid: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(user_out(s.accounts.get(uid))))


@users_app.command("kyc")
def users_kyc(uid: str, level: int, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(user_out(s.accounts.set_kyc(uid, level))))


@users_app.command("accept-terms")
def users_terms(uid: str, product: str, db: DbOpt = None) -> None:
    s = _services(db)

    def go() -> None:
        s.accounts.accept_terms(uid, product)
        typer.echo("accepted")

    _run(go)


@users_app.command("freeze")
def users_freeze(uid: str, function: Annotated[list[str] | None, typer.Option()] = None, db: DbOpt = None) -> None:
    """Freeze a user (globally, or only the --function ones)."""
    s = _services(db)
    _run(lambda: _print(user_out(s.accounts.set_frozen(uid, True, function or []))))


@users_app.command("unfreeze")
def users_unfreeze(uid: str, function: Annotated[list[str] | None, typer.Option()] = None, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(user_out(s.accounts.set_frozen(uid, False, function or []))))


@users_app.command("deposit")
def users_deposit(uid: str, ccy: str, amt: str, chain: str = "", tx_id: str = "", idempotency_key: str = "",
                  db: DbOpt = None) -> None:
    """Credit a deposit (the sandbox faucet; shown in deposit history)."""
    s = _services(db)

    def go() -> None:
        try:
            value = parse_amount(amt, scale=18, max_amount=s.settings.max_amount)
        except AmountError as exc:
            raise dom.InvalidParameter("amt", exc.reason) from None
        _print(deposit_out(s.assets.credit_deposit(uid, ccy.upper(), value, chain=chain, tx_id=tx_id,
                                                   idempotency_key=idempotency_key)))

    _run(go)


@users_app.command("balances")
def users_balances(uid: str, db: DbOpt = None) -> None:
    s = _services(db)

    def go() -> None:
        s.accounts.get(uid)
        _print([balance_out(t, b) for t in (FUNDING, TRADING) for b in s.assets.balances(uid, t)])

    _run(go)


@users_app.command("journal")
def users_journal(uid: str, limit: int = 50, db: DbOpt = None) -> None:
    """A user's postings, newest first."""
    s = _services(db)
    _run(lambda: _print([posting_out(p) for p in s.user_journal(uid, limit=limit)]))


# -- keys ----------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(uid: str, perm: Annotated[list[str] | None, typer.Option(help="read_only, trade, withdraw")] = None,
                ip: Annotated[list[str] | None, typer.Option()] = None, label: str = "",
                passphrase: str | None = None, db: DbOpt = None) -> None:
    """Create an OKX API key; secretKey and passphrase are shown this once."""
    s = _services(db)
    _run(lambda: _print(new_key_out(s.accounts.create_key(uid, perms=perm or ["read_only"], ips=ip or [],
                                                          label=label, passphrase=passphrase))))


@keys_app.command("list")
def keys_list(uid: str, db: DbOpt = None) -> None:
    _print([key_out(k) for k in _services(db).accounts.list_keys(uid)])


@keys_app.command("revoke")
def keys_revoke(api_key: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(key_out(s.accounts.revoke_key(api_key))))


@keys_app.command("freeze")
def keys_freeze(api_key: str, db: DbOpt = None) -> None:
    """Freeze an OKX key: its requests get 50100 until it is unfrozen (other workers follow within 2 s)."""
    s = _services(db)
    _run(lambda: _print(key_out(s.accounts.set_key_frozen(api_key, True))))


@keys_app.command("unfreeze")
def keys_unfreeze(api_key: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(key_out(s.accounts.set_key_frozen(api_key, False))))


# -- clock ---------------------------------------------------------------------------------


@clock_app.command("show")
def clock_show(db: DbOpt = None) -> None:
    s = _services(db)
    _print(clock_out(s))


@clock_app.command("freeze")
def clock_freeze(db: DbOpt = None) -> None:
    """Stop the sandbox clock where it is (only `clock advance` moves it until `clock resume`)."""
    s = _services(db)

    def go() -> None:
        s.pin_clock(running=False)
        _print(clock_out(s))

    _run(go)


@clock_app.command("resume")
def clock_resume(db: DbOpt = None) -> None:
    """Let the sandbox clock run with the wall clock again, from where it stands."""
    s = _services(db)

    def go() -> None:
        s.pin_clock(running=True)
        _print(clock_out(s))

    _run(go)


@clock_app.command("advance")
def clock_advance(
    days: Annotated[int | None, typer.Option(min=0, max=MAX_ADVANCE.days)] = None,
    hours: Annotated[int | None, typer.Option(min=0, max=MAX_ADVANCE.days * 24)] = None,
    seconds: Annotated[int | None, typer.Option(min=0, max=int(MAX_ADVANCE.total_seconds()))] = None,
    to: Annotated[str, typer.Option(help="A moment with a time zone, e.g. 2027-01-01T00:00:00Z.")] = "",
    db: DbOpt = None,
) -> None:
    """Move the sandbox clock forward (at most 3660 days at once) and run every job that falls due
    (sandbox only). Progress goes to stderr; --days 0 runs what is due now."""
    s = _services(db)
    started = time.monotonic()
    last: list[float] = []

    def progress(reached: dt.datetime, runs: int) -> None:
        """A line after the first day, then at most one a second."""
        now = time.monotonic()
        if not last or now - last[0] >= 1.0:
            last[:] = [now]
            typer.echo(f"  at {reached.isoformat()}: {runs} job runs, {now - started:.0f} s", err=True)

    def go() -> None:
        try:
            target = dt.datetime.fromisoformat(to.replace("Z", "+00:00")) if to else None
        except ValueError:
            raise dom.InvalidParameter("to", "ISO 8601 with a time zone, e.g. 2027-01-01T00:00:00Z") from None
        given = [v for v in (days, hours, seconds) if v is not None]
        by = dt.timedelta(days=days or 0, hours=hours or 0, seconds=seconds or 0) if given else None
        _print(advance_out(s.clock.now, s.advance_clock(to=target, by=by, progress=progress)))

    _run(go)


# -- staking -------------------------------------------------------------------------------


@staking_app.command("products")
def staking_products(product: Annotated[str | None, typer.Argument()] = None, db: DbOpt = None) -> None:
    """Every config value of every product (or of PRODUCT); null = unlimited."""
    s = _services(db)
    _run(lambda: _print(product_out(s.staking.product(product)) if product
                        else [product_out(c) for c in s.staking.products()]))


@staking_app.command("set")
def staking_set(product: str, name: str, value: str, db: DbOpt = None) -> None:
    """Change one setting, e.g. `staking set ETH daily_redemption_cap 500` ("none" = unlimited)."""
    s = _services(db)
    new = None if value.strip().lower() == "none" else value
    _run(lambda: _print(product_out(s.staking.update_product(product, {name: new}))))


@staking_app.command("rate")
def staking_rate(product: str, day: str, rate: str, db: DbOpt = None) -> None:
    """Publish rate(DAY) (ISO date) as an APY, e.g. 0.0284 = 2.84 %."""
    s = _services(db)
    _run(lambda: _print(publish(s, product, day, rate)))


@staking_app.command("rates")
def staking_rates(product: str, days: int = 30, db: DbOpt = None) -> None:
    """The rate in force on each of the last DAYS T-days, newest first."""
    s = _services(db)
    _run(lambda: _print(rates_out(s, product, days)))


@staking_app.command("queue")
def staking_queue(product: str, db: DbOpt = None) -> None:
    """The product's standard redemption queue in FIFO order, with the daily cap figures."""
    s = _services(db)
    _run(lambda: _print(queue_out(s, product)))


@staking_app.command("runs")
def staking_runs(product: str, limit: int = 30, db: DbOpt = None) -> None:
    """The product's reward runs, newest day first."""
    s = _services(db)
    _run(lambda: _print(runs_out(s, product, limit)))


@staking_app.command("rewards")
def staking_rewards(uid: str, product: str = "ETH", db: DbOpt = None) -> None:
    """A user's daily rewards for a product, oldest day first."""
    s = _services(db)
    _run(lambda: _print(rewards_out(s, uid, product)))


@staking_app.command("order")
def staking_order(ord_id: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(order_out(s.staking.order(ord_id))))


@staking_app.command("reverse")
def staking_reverse(ord_id: str, reason: Annotated[str, typer.Option(help="Why (1..500 characters).")],
                    db: DbOpt = None) -> None:
    """Reverse a completed order with compensating journal entries; the order becomes failed."""
    s = _services(db)
    _run(lambda: _print(order_out(s.staking.reverse_order(ord_id, reason))))


@app.command()
def maintenance(state: Annotated[str, typer.Argument(help="on, off or show")] = "show", db: DbOpt = None) -> None:
    """Maintenance mode: while on, the OKX and Gemini APIs answer 503 (the admin API and jobs go on)."""
    if state not in ("on", "off", "show"):
        typer.echo("error: on, off or show", err=True)
        raise typer.Exit(2)
    s = _services(db)
    _run(lambda: _print({"on": s.in_maintenance() if state == "show" else s.set_maintenance(state == "on")}))


# -- provider staking, prices, Gemini keys -----------------------------------------------------


@providers_app.command("create")
def providers_create(name: str, provider_id: Annotated[str | None, typer.Option("--id", help="A UUID.")] = None,
                     db: DbOpt = None) -> None:
    """Register a staking provider (its UUID is generated unless given)."""
    s = _services(db)
    _run(lambda: _print(provider_out(s.provider_staking.create_provider(name, provider_id))))


@providers_app.command("list")
def providers_list(db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print([provider_out(p) for p in s.provider_staking.providers()]))


@providers_app.command("products")
def providers_products(db: DbOpt = None) -> None:
    """Every product (provider, currency) with every setting; null = unlimited."""
    s = _services(db)
    _run(lambda: _print([provider_product_out(p) for p in s.provider_staking.products()]))


@providers_app.command("offer")
def providers_offer(provider_id: str, ccy: str,
                    setting: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable.")] = None,
                    db: DbOpt = None) -> None:
    """Offer CCY with a provider, or change settings, e.g. `--setting unstake_mode=queued`
    (money as decimal text, "none" = unlimited, true/false, integers)."""
    s = _services(db)

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
        _print(provider_product_out(s.provider_staking.set_product(provider_id, ccy, changes)))

    _run(go)


@providers_app.command("rate")
def providers_rate(provider_id: str, ccy: str, day: str, rate: str, db: DbOpt = None) -> None:
    """Publish the simple annual rate in basis points from accrual DAY (ISO date) on."""
    s = _services(db)
    _run(lambda: _print(publish_bps(s, provider_id, ccy, day, rate)))


@providers_app.command("runs")
def providers_runs(limit: int = 30, db: DbOpt = None) -> None:
    """The interest runs, newest day first."""
    s = _services(db)
    _run(lambda: _print([run_out(r) for r in s.provider_staking.accrual_runs(limit)]))


@providers_app.command("balances")
def providers_balances(uid: str, db: DbOpt = None) -> None:
    """A user's staking balances per provider, with what is being paid out."""
    s = _services(db)
    _run(lambda: _print([account_balance_out(b) for b in s.provider_staking.account_balances(uid)]))


@prices_app.command("set")
def prices_set(ccy: str, price: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(price_out(s.provider_staking.set_price(ccy, parse_decimal("price", price)))))


@prices_app.command("list")
def prices_list(db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print([price_out(p) for p in s.provider_staking.prices()]))


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
    s = _services(db)

    def go() -> None:
        key, secret = s.gemini_keys.create_key(uid, scope=scope, roles=role or ["Trader"], time_based_nonce=time_based,
                                               ips=ip or [], label=label)
        _print({**gemini_key_out(key), "secret": secret})

    _run(go)


@gemini_keys_app.command("list")
def gemini_keys_list(uid: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print([gemini_key_out(k) for k in s.gemini_keys.list_keys(uid)]))


@gemini_keys_app.command("revoke")
def gemini_keys_revoke(api_key: str, db: DbOpt = None) -> None:
    s = _services(db)
    _run(lambda: _print(gemini_key_out(s.gemini_keys.revoke_key(api_key))))


def main() -> None:
    app()


__all__ = ["main"]


if __name__ == "__main__":
    main()
