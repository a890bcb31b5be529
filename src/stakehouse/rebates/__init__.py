"""ND broker rebates: the daily run at 00:00 HKT that records each sub-account's day and pays its
broker, ``rebate-daily``, ``if-rebate``, and the operator's ratios, caps and VIP fee-rate mode."""

from __future__ import annotations

import functools

from stakehouse.accounts.service import AccountService
from stakehouse.container import Container
from stakehouse.jobs.runner import Job
from stakehouse.jobs.schedule import Daily
from stakehouse.rebates.audit import CHECKS
from stakehouse.rebates.runs import nd_rebate_run
from stakehouse.rebates.service import RebateService

#: The run's days: Hong Kong days (UTC+8), as the seed's broker figures are.
HONG_KONG = "Asia/Hong_Kong"


def install(c: Container) -> None:
    c.provide(RebateService(c.db, c.clock, c.get(AccountService)))
    c.jobs.add(Job("nd_rebates", Daily(HONG_KONG), functools.partial(nd_rebate_run, ledger=c.ledger), exclusive=True))
    c.checks.extend(CHECKS)
