"""The spot market: index prices (the sandbox's seeded walk, production pushes), orders and fills
with fees and ND markups, contract credits, and the minute step that fills resting orders."""

from __future__ import annotations

import functools

from stakehouse.accounts.service import AccountService
from stakehouse.assets.prices import UsdPrices
from stakehouse.container import Container
from stakehouse.trading.audit import CHECKS
from stakehouse.trading.credits import CreditService
from stakehouse.trading.prices import PriceService, seed_paths
from stakehouse.trading.runs import CreditExpiry, MarketSource, start_market
from stakehouse.trading.service import TradingService, seed_fee_levels


def install(c: Container) -> None:
    accounts = c.get(AccountService)
    prices = c.provide(PriceService(c.db, c.clock, c.settings))
    usd = c.get(UsdPrices)
    usd.use_index(prices)  # one source of prices: USD valuations read the index
    trading = c.provide(TradingService(c.db, c.clock, c.ledger, accounts, prices, usd, c.settings))
    c.provide(CreditService(c.db, c.clock, accounts))
    c.seeds.append(functools.partial(seed_paths, sandbox=bool(c.settings.sandbox)))
    c.seeds.append(functools.partial(seed_fee_levels, taker=c.settings.spot_taker_fee_rate,
                                     maker=c.settings.spot_maker_fee_rate))
    c.seeds.append(start_market)
    c.runner.add_source(MarketSource(c.db, trading, prices))
    c.runner.add_source(CreditExpiry(c.db))
    c.checks.extend(CHECKS)
