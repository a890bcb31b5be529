"""``stakehouse chain ...``: chain settings and the sandbox chain simulator (deposits, withdrawals)."""

from __future__ import annotations

import typer

chain_app = typer.Typer(help="Chains and the sandbox chain simulator: deposits, withdrawals.", no_args_is_help=True)
