"""Non-disclosed brokers: broker accounts and levels, their sub-accounts (two levels), the
sub-accounts' API keys, account levels, trading-fee changes with their full history, IP reports
and demo top-ups (seed 004, "Non-Disclosed Broker")."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.clock import Clock
from stakehouse.config import Settings
from stakehouse.db.engine import Database
from stakehouse.ledger.journal import Ledger


class BrokerService:
    def __init__(self, db: Database, clock: Clock, ledger: Ledger, accounts: AccountService,
                 settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.accounts = accounts
        self.settings = settings
