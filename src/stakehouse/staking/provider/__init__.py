"""Provider staking (Gemini-style products, staking-rules.md section 9): providers, products, rates,
stake and unstake, the daily interest and settlement runs, the audit."""

from __future__ import annotations

import datetime as dt

from stakehouse.accounts.service import AccountService
from stakehouse.assets.prices import UsdPrices
from stakehouse.container import Container
from stakehouse.jobs.runner import Job
from stakehouse.jobs.schedule import Daily
from stakehouse.staking.provider.audit import CHECKS
from stakehouse.staking.provider.runs import interest_run, settlement_run
from stakehouse.staking.provider.service import INTEREST_JOB, ProviderStakingService


def install(c: Container) -> None:
    calendar = Daily("UTC", dt.time.fromisoformat(c.settings.provider_accrual_time))
    usd = c.get(UsdPrices)
    c.provide(ProviderStakingService(c.db, c.clock, c.ledger, c.get(AccountService), calendar, usd))
    c.jobs.add(Job(INTEREST_JOB, calendar, interest_run(ledger=c.ledger, usd=usd), exclusive=True))
    c.jobs.add(Job("provider_settlement", calendar, settlement_run(ledger=c.ledger), exclusive=True))
    c.checks.extend(CHECKS)
