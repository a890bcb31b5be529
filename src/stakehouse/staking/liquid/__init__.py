"""Liquid staking (ETH -> BETH, SOL -> OKSOL): products, use cases, the daily reward and settlement
runs, the audit."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.container import Container
from stakehouse.jobs.runner import Job
from stakehouse.jobs.schedule import Daily
from stakehouse.staking.liquid.audit import CHECKS
from stakehouse.staking.liquid.products import reward_job, seed_products
from stakehouse.staking.liquid.runs import reward_run, settlement_run
from stakehouse.staking.liquid.service import StakingService
from stakehouse.staking.rules import DEFAULT_PRODUCTS


def install(c: Container) -> None:
    calendar = Daily(c.settings.business_tz)
    c.provide(StakingService(c.db, c.clock, c.ledger, c.get(AccountService), calendar))
    # Per product, the reward run then the settlement run of each T-day (rewards first: the runner
    # orders a period's jobs by registration).
    names = [cfg.product for cfg in DEFAULT_PRODUCTS]
    for product in names:
        c.jobs.add(Job(reward_job(product), calendar, reward_run(ledger=c.ledger, product=product), exclusive=True))
    for product in names:
        c.jobs.add(Job(f"staking_settlement:{product}", calendar,
                       settlement_run(ledger=c.ledger, calendar=calendar, product=product), exclusive=True))
    c.checks.extend(CHECKS)
    c.seeds.append(seed_products)
