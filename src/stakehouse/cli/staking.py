"""``stakehouse staking ...``: liquid staking products, rates, queue and corrections."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.staking import (
    order_out,
    product_out,
    publish,
    queue_out,
    rates_out,
    rewards_out,
    runs_out,
)

staking_app = typer.Typer(help="Liquid staking products, rates, queue and corrections.", no_args_is_help=True)


@staking_app.command("products")
def staking_products(product: Annotated[str | None, typer.Argument()] = None, db: DbOpt = None) -> None:
    """Every config value of every product (or of PRODUCT); null = unlimited."""
    s = services_for(db)
    run_command(lambda: print_json(product_out(s.staking.product(product)) if product
                                   else [product_out(c) for c in s.staking.products()]))


@staking_app.command("set")
def staking_set(product: str, name: str, value: str, db: DbOpt = None) -> None:
    """Change one setting, e.g. `staking set ETH daily_redemption_cap 500` ("none" = unlimited)."""
    s = services_for(db)
    new = None if value.strip().lower() == "none" else value
    run_command(lambda: print_json(product_out(s.staking.update_product(product, {name: new}))))


@staking_app.command("rate")
def staking_rate(product: str, day: str, rate: str, db: DbOpt = None) -> None:
    """Publish rate(DAY) (ISO date) as an APY, e.g. 0.0284 = 2.84 %."""
    s = services_for(db)
    run_command(lambda: print_json(publish(s, product, day, rate)))


@staking_app.command("rates")
def staking_rates(product: str, days: int = 30, db: DbOpt = None) -> None:
    """The rate in force on each of the last DAYS T-days, newest first."""
    s = services_for(db)
    run_command(lambda: print_json(rates_out(s, product, days)))


@staking_app.command("queue")
def staking_queue(product: str, db: DbOpt = None) -> None:
    """The product's standard redemption queue in FIFO order, with the daily cap figures."""
    s = services_for(db)
    run_command(lambda: print_json(queue_out(s, product)))


@staking_app.command("runs")
def staking_runs(product: str, limit: int = 30, db: DbOpt = None) -> None:
    """The product's reward runs, newest day first."""
    s = services_for(db)
    run_command(lambda: print_json(runs_out(s, product, limit)))


@staking_app.command("rewards")
def staking_rewards(uid: str, product: str = "ETH", db: DbOpt = None) -> None:
    """A user's daily rewards for a product, oldest day first."""
    s = services_for(db)
    run_command(lambda: print_json(rewards_out(s, uid, product)))


@staking_app.command("order")
def staking_order(ord_id: str, db: DbOpt = None) -> None:
    s = services_for(db)
    run_command(lambda: print_json(order_out(s.staking.order(ord_id))))


@staking_app.command("reverse")
def staking_reverse(ord_id: str, reason: Annotated[str, typer.Option(help="Why (1..500 characters).")],
                    db: DbOpt = None) -> None:
    """Reverse a completed order with compensating journal entries; the order becomes failed."""
    s = services_for(db)
    run_command(lambda: print_json(order_out(s.staking.reverse_order(ord_id, reason))))
