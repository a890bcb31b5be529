"""The non-disclosed broker: brokers, sub-accounts of two levels and their keys, account levels,
trading-fee changes, IP reports, demo top-ups."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.broker.service import BrokerService
from stakehouse.container import Container


def install(c: Container) -> None:
    c.provide(BrokerService(c.db, c.clock, c.ledger, c.get(AccountService), c.settings))
