"""Funding: deposit addresses, deposits (and the sandbox chain simulator that confirms them),
withdrawals and their rules."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.container import Container
from stakehouse.funding.audit import CHECKS
from stakehouse.funding.deposits import ChainService
from stakehouse.funding.withdrawals import WithdrawalService


def install(c: Container) -> None:
    accounts = c.get(AccountService)
    chain = c.provide(ChainService(c.db, c.clock, c.ledger, accounts, sandbox=bool(c.settings.sandbox)))
    withdrawals = c.provide(WithdrawalService(c.db, c.clock, c.ledger, accounts, chain, c.settings))
    # event sources, interleaved with the jobs in due-time order: deposits, then withdrawals
    c.runner.add_source(chain)
    c.runner.add_source(withdrawals)
    c.checks.extend(CHECKS)
