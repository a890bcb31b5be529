"""Assets: reference data (currencies, chains, spot instruments), balances and transfers, USD prices."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.assets.prices import UsdPrices
from stakehouse.assets.reference import ReferenceData, seed_reference_data
from stakehouse.assets.service import AssetService
from stakehouse.container import Container


def install(c: Container) -> None:
    c.provide(ReferenceData(c.db))
    c.provide(UsdPrices(c.db, c.clock))
    c.provide(AssetService(c.db, c.clock, c.ledger, c.get(AccountService)))
    c.seeds.append(seed_reference_data)
