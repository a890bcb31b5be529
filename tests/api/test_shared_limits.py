"""Two servers on one database and one Redis share the rate-limit counters."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.test_sandbox_admin import signed_get
from tests.stack import start_stack


def test_two_servers_share_one_limit(backend: str, make_db: Callable[[str], str], redis_url: str) -> None:
    db = make_db(backend)
    first = start_stack(db, redis_url=redis_url, rate_limit_factor=1.0)
    try:
        second = start_stack(db, redis_url=redis_url, rate_limit_factor=1.0,
                             server_key=first.services.settings.server_key)
    except Exception:
        first.stop()
        raise
    try:
        c = first.new_user()
        codes = []
        for i in range(8):  # asset/balances allows 6 per second per user
            server = first if i % 2 == 0 else second
            codes.append(signed_get(server, c, "/api/v5/asset/balances").json()["code"])
        assert codes.count("0") == 6 and codes.count("50011") == 2, codes
    finally:
        second.stop()
        first.stop()
