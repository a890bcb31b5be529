"""``stakehouse chain ...``: chain settings and the sandbox chain simulator (deposits, withdrawals)."""

from __future__ import annotations

from typing import Annotated

import typer

from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.funding.deposits import SendDeposit
from stakehouse.operator.funding import (
    address_out,
    chain_changes,
    chain_deposit_out,
    chain_out,
    parse_money,
)

chain_app = typer.Typer(help="Chains and the sandbox chain simulator: deposits, withdrawals.", no_args_is_help=True)


@chain_app.command("list")
def chain_list(ccy: Annotated[str, typer.Option(help="Currencies, comma-separated (default: all).")] = "",
               db: DbOpt = None) -> None:
    """Every chain with its confirmations, fee, limits, block time and address format."""
    s = services_for(db)
    ccys = [c.strip().upper() for c in ccy.split(",") if c.strip()]
    run_command(lambda: print_json([chain_out(c) for c in s.chain.chains(ccys)]))


@chain_app.command("set")
def chain_set(
    chain: str,
    confirmations: Annotated[int | None, typer.Option(help="Confirmations to credit a deposit (1..10000).")] = None,
    unlock_confirmations: Annotated[int | None, typer.Option(help="Confirmations to succeed (>= confirmations).")
                                    ] = None,
    fee: Annotated[str | None, typer.Option(help="Withdrawal fee in the currency (>= 0).")] = None,
    min_dep: Annotated[str | None, typer.Option(help="Minimum deposit.")] = None,
    min_wd: Annotated[str | None, typer.Option(help="Minimum withdrawal.")] = None,
    max_wd: Annotated[str | None, typer.Option(help="Maximum withdrawal.")] = None,
    block_seconds: Annotated[int | None, typer.Option(help="Seconds per block of the simulator (1..86400).")] = None,
    can_dep: Annotated[bool | None, typer.Option("--can-dep/--no-dep", help="Deposits open or suspended.")] = None,
    can_wd: Annotated[bool | None, typer.Option("--can-wd/--no-wd", help="Withdrawals open or suspended.")] = None,
    db: DbOpt = None,
) -> None:
    """Change a chain's settings (only the options given; validated as a whole). Deposits and
    withdrawals already under way keep the counts and block time they started with."""
    s = services_for(db)
    values = {"confirmations": confirmations, "unlockConfirmations": unlock_confirmations, "fee": fee,
              "minDep": min_dep, "minWd": min_wd, "maxWd": max_wd, "blockSeconds": block_seconds,
              "canDep": can_dep, "canWd": can_wd}
    run_command(lambda: print_json(chain_out(s.chain.configure_chain(chain, chain_changes(values)))))


@chain_app.command("deposit")
def chain_deposit(
    addr: str,
    ccy: Annotated[str, typer.Option(help="Currency, e.g. USDT.")],
    amt: Annotated[str, typer.Option(help="Amount, e.g. 12.5.")],
    chain: Annotated[str, typer.Option(help="Chain, e.g. USDT-ERC20 (default: the main chain).")] = "",
    tag: Annotated[str, typer.Option(help="Tag of tag chains (or give ADDR as addr:tag).")] = "",
    tx_id: Annotated[str, typer.Option(help="Transaction hash (default: a new one).")] = "",
    from_addr: Annotated[str, typer.Option(help="Sending address on the chain.")] = "",
    db: DbOpt = None,
) -> None:
    """Send an on-chain deposit to one of our deposit addresses (sandbox): it waits for
    confirmations as the clock advances (``stakehouse clock advance``), then is credited."""
    s = services_for(db)

    def go() -> None:
        req = SendDeposit(addr=addr, ccy=ccy.upper(), amt=parse_money("amt", amt), chain=chain, tag=tag,
                          tx_id=tx_id, from_addr=from_addr)
        print_json(chain_deposit_out(s.chain.send_deposit(req)))

    run_command(go)


@chain_app.command("show-deposit")
def chain_show_deposit(dep_id: str, db: DbOpt = None) -> None:
    """One deposit with its confirmations as of now."""
    s = services_for(db)
    run_command(lambda: print_json(chain_deposit_out(s.chain.deposit(dep_id))))


@chain_app.command("address")
def chain_address(addr: str, tag: str = "", chain: str = "", db: DbOpt = None) -> None:
    """Who owns a deposit address (with ``--tag`` on tag chains)."""
    s = services_for(db)
    run_command(lambda: print_json([address_out(a) for a in s.chain.find_addresses(addr, tag=tag, chain=chain)]))
