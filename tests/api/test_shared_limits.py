"""Two server processes on one database and one Redis share the rate-limit counters."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.test_sandbox_admin import signed_get
from tests.stack import start_server_process, start_stack


def test_two_server_processes_share_one_limit(backend: str, make_db: Callable[[str], str], redis_url: str) -> None:
    db = make_db(backend)
    first = start_stack(db, redis_url=redis_url, rate_limit_factor=1.0)
    proc, second_url = start_server_process(db, first.services.settings.server_key, STAKEHOUSE_REDIS_URL=redis_url,
                                            STAKEHOUSE_RATE_LIMIT_FACTOR="1")
    try:
        c = first.new_user()
        codes = []
        for i in range(8):  # asset/balances allows 6 per second per user
            base = first.base_url if i % 2 == 0 else second_url
            codes.append(signed_get(base, c, "/api/v5/asset/balances").json()["code"])
        assert codes.count("0") == 6 and codes.count("50011") == 2, codes
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        first.stop()
