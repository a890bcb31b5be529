"""Broker rebates: the daily run at 00:00 HKT that records each ND sub-account's and FD user's day
and pays the brokers (and FD users their share), ``rebate-daily``, ``if-rebate`` (ND and FD),
the detail files (``rebate-per-orders``) and their signed download links, and the operator's
ratios, caps, VIP fee-rate mode and FD brokers."""

from __future__ import annotations

import datetime as dt

from stakehouse.accounts.service import AccountService
from stakehouse.container import Container
from stakehouse.jobs.runner import Job
from stakehouse.jobs.schedule import Daily
from stakehouse.rebates.audit import CHECKS, FILE_CHECKS
from stakehouse.rebates.fd import FdBrokerService
from stakehouse.rebates.files import FileStore, RebateFiles, RebateFileService
from stakehouse.rebates.runs import rebate_run
from stakehouse.rebates.service import RebateService

#: The run's days: Hong Kong days (UTC+8), as the seed's broker figures are.
HONG_KONG = "Asia/Hong_Kong"


def install(c: Container) -> None:
    accounts = c.get(AccountService)
    store = FileStore(c.settings.files_path(), c.box.derive("rebate file links"))
    c.provide(RebateService(c.db, c.clock, accounts))
    c.provide(FdBrokerService(c.db, c.clock, accounts))
    c.provide(RebateFileService(c.db, c.clock, store))
    c.jobs.add(Job("nd_rebates", Daily(HONG_KONG), rebate_run(ledger=c.ledger), exclusive=True))
    c.runner.add_source(RebateFiles(c.db, store, dt.timedelta(seconds=c.settings.rebate_file_delay_seconds)))
    c.checks.extend([*CHECKS, *(check(store) for check in FILE_CHECKS)])
