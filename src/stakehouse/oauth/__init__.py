"""OAuth 2.0 for FD OAuth brokers: clients, codes, grants, token pairs, Fast API keys."""

from __future__ import annotations

from stakehouse.accounts.service import AccountService
from stakehouse.container import Container
from stakehouse.oauth.service import OAuthService


def install(c: Container) -> None:
    c.provide(OAuthService(c.db, c.clock, c.box, c.get(AccountService), sandbox=bool(c.settings.sandbox)))
