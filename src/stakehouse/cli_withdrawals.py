"""``stakehouse withdrawals ...``: list withdrawals and move them in the sandbox chain simulator."""

from __future__ import annotations

import typer

withdrawals_app = typer.Typer(help="Withdrawals: list, fail (sandbox chain simulator).", no_args_is_help=True)
