"""``stakehouse broker ...``: ND brokers, their levels and sub-accounts (operator commands)."""

from __future__ import annotations

import typer

broker_app = typer.Typer(help="Non-disclosed brokers: mark, level, sub-accounts, fee rates.", no_args_is_help=True)
