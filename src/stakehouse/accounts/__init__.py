"""Accounts: users and sub-accounts, KYC, terms, freezes, OKX and Gemini API keys, key expiry, web
logins and sessions."""

from __future__ import annotations

from stakehouse.accounts.gemini_keys import GeminiKeyService
from stakehouse.accounts.logins import LoginService
from stakehouse.accounts.service import AccountService
from stakehouse.clock import wall_time
from stakehouse.container import Container
from stakehouse.jobs.runner import Job
from stakehouse.jobs.schedule import Hourly


def install(c: Container) -> None:
    accounts = c.provide(AccountService(c.db, c.clock, c.box))
    c.provide(GeminiKeyService(c.db, c.clock, c.box, accounts))
    c.provide(LoginService(c.db, accounts, wall_time))  # sessions run on wall time (logins.py)
    if c.settings.key_expiry_active:
        c.jobs.add(Job("api_key_expiry", Hourly(),
                       lambda conn, period: f"expired {accounts.expire_idle_keys(conn, period.end)}"))
