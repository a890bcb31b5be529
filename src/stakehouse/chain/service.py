"""Deposit addresses and the sandbox chain simulator's deposits: an on-chain deposit waits for
confirmations as the clock advances, is credited, then succeeds (seed 004, conventions 6.9)."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.clock import Clock
from stakehouse.db.engine import Database
from stakehouse.ledger.journal import Ledger


class ChainService:
    name = "chain_deposits"

    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
