"""Two server processes on one database and one Redis share the rate-limit counters."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import redis
from sqlalchemy import make_url

from stakehouse.db.engine import libpq_conninfo
from stakehouse.security import new_server_key
from tests.api.test_broker_api import make_broker
from tests.api.test_sandbox_admin import signed_get
from tests.stack import start_server_process, start_stack


def test_two_server_processes_share_one_limit(backend: str, make_db: Callable[[str], str], redis_url: str) -> None:
    db = make_db(backend)
    first = start_stack(db, redis_url=redis_url, rate_limit_factor=1.0)
    proc, second_url = start_server_process(db, first.services.settings.server_key, STAKEHOUSE_REDIS_URL=redis_url,
                                            STAKEHOUSE_RATE_LIMIT_FACTOR="1")
    try:
        # broker/nd/rebate-daily allows 1 request per 10 seconds per user: a window no slow machine outruns (a
        # per-second limit let a 7th request in when the 8 took over a second on a loaded machine)
        c = make_broker(first)
        codes = []
        for i in range(4):
            base = first.base_url if i % 2 == 0 else second_url
            codes.append(signed_get(base, c, "/api/v5/broker/nd/rebate-daily").json()["code"])
        assert codes == ["0", "50011", "50011", "50011"], codes  # per process, the second would have been "0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        first.stop()


def test_a_worker_prefills_its_pools_when_it_starts(make_db: Callable[[str], str], redis_url: str) -> None:
    """``pool_prefill`` (production): the worker's PostgreSQL pools and its Redis pool hold their
    connections before the first request, so a soak sees flat counts from the start."""
    db = make_db("postgres")
    name = make_url(db).database
    limits_db = f"{redis_url.rstrip('/')}/9"  # a Redis database no other test uses: its clients are this worker's
    counts = {}
    for prefill in (0, 6):
        start_stack(db).stop()  # migrated; the process below does not migrate
        proc, _ = start_server_process(db, new_server_key(), STAKEHOUSE_REDIS_URL=limits_db,
                                       STAKEHOUSE_POOL_PREFILL=str(prefill))
        try:
            with psycopg.connect(libpq_conninfo(db), autocommit=True) as pg:
                pg_count = pg.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                      "pg_backend_pid()", (name,)).fetchone()
            clients = redis.Redis.from_url(limits_db).client_list()
            counts[prefill] = (pg_count[0] if pg_count else 0, sum(1 for c in clients if c["db"] == "9") - 1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    # Lazily: what the start and the health checks opened (3 and 1 here). Pre-filled: 6 in each of the
    # two PostgreSQL pools (the health checks borrow from them), 6 to Redis.
    assert counts[0][0] <= 3 and counts[0][1] <= 1, counts
    assert counts[6] == (12, 6), counts
