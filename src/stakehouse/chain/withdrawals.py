"""Withdrawals: on-chain (through the simulator's states as the clock advances) and internal
(instant, to another user of the platform), with the fee, holds and refunds in the ledger."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.chain.service import ChainService
from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.ledger.journal import Ledger


class WithdrawalService:
    name = "chain_withdrawals"

    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService,
                 chain: ChainService) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.chain = chain
