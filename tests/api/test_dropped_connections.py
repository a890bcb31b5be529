"""PostgreSQL drops the server's connections (``pg_terminate_backend``, as a failover or a restart
does) while clients keep calling: no request gets a 500 or a reset connection.

Reads are tried once more on a fresh connection (so they succeed); a write whose connection died
answers 50013 ("Systems are busy") and changed nothing, so the client's retry with the same
``clientId`` moves the money exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest

from stakehouse.db.engine import libpq_conninfo
from tests.api.test_okx_errors import Api
from tests.stack import start_stack


def server_conninfo(url: str) -> str:
    """The same server's ``postgres`` database (to act on ``url``'s database from outside it)."""
    return libpq_conninfo(url.rsplit("/", 1)[0] + "/postgres")


def terminate_backends(url: str) -> int:
    """Drop every connection of the database behind ``url``; the number dropped."""
    with psycopg.connect(server_conninfo(url), autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                            (url.rsplit("/", 1)[1],)).fetchall()
    return len(rows)


def test_dropped_database_connections_never_give_a_500(make_db: Callable[[str], str]) -> None:
    url = make_db("postgres")
    stack = start_stack(url)
    api = Api(stack)
    try:
        c = stack.new_user(funds={"USDT": "1000"})
        reads = ("/api/v5/asset/balances", "/api/v5/asset/deposit-history", "/api/v5/account/balance",
                 "/api/v5/finance/staking-defi/eth/balance")
        background: list[tuple[str, int, str]] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def traffic() -> None:
            client = Api(stack)  # one keep-alive connection: a reset would raise here
            try:
                while not stop.is_set():
                    for path in reads:
                        r = client.get(c, path)
                        background.append((path, r.status_code, r.json()["code"]))
            except BaseException as exc:
                errors.append(exc)
            finally:
                client.close()

        thread = threading.Thread(target=traffic)
        thread.start()
        transfers: list[str] = []
        try:
            for round_ in range(6):
                time.sleep(0.3)
                assert terminate_backends(url) > 0
                # right after the drop, every read is answered: its retry gets a fresh connection
                for path in reads:
                    r = api.get(c, path)
                    assert (r.status_code, r.json()["code"]) == (200, "0"), (path, r.text)
                # a key nobody has used: its lookup meets the dropped connections too
                fresh = stack.add_key(c.uid, env=c.env)
                assert terminate_backends(url) > 0
                client_id = f"drop{round_}"
                body = {"ccy": "USDT", "amt": "1", "from": "6", "to": "18", "clientId": client_id}
                for _attempt in range(5):  # a client retries a busy answer with the same clientId
                    r = api.post(fresh, "/api/v5/asset/transfer", body)
                    assert r.status_code < 500, r.text
                    if r.json()["code"] == "0":
                        transfers.append(client_id)
                        break
                    assert (r.status_code, r.json()["code"]) == (429, "50013"), r.text
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not errors, errors
        # concurrent reads: answered, or (when a drop also hit their retry) busy; never a 500
        assert background and all((status, code) in ((200, "0"), (429, "50013")) for _p, status, code in background)
        assert len(transfers) == 6
        balances = stack.balances(c.uid)
        assert (balances[("6", "USDT")], balances[("18", "USDT")]) == (Decimal(994), Decimal(6))
        stack.audit_ok()
    finally:
        api.close()
        stack.stop()


@pytest.mark.parametrize("phase", ["auth", "read"])
def test_a_database_that_stays_away_is_50013(make_db: Callable[[str], str], phase: str) -> None:
    """When the retry fails too (the server is gone), the answer is 50013, not 50026."""
    url = make_db("postgres")
    stack = start_stack(url)
    api = Api(stack)
    try:
        c = stack.new_user(funds={"USDT": "10"})
        if phase == "read":
            assert api.get(c, "/api/v5/asset/deposit-history").json()["code"] == "0"  # key cached
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(server_conninfo(url), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                terminate_backends(url)
                r = api.get(c, "/api/v5/asset/deposit-history")
                assert (r.status_code, r.json()) == (429, {"code": "50013", "msg": "Systems are busy. Please try "
                                                                                   "again later.", "data": []})
                health = api.raw("GET", "/healthz")
                assert (health.status_code, health.json()["database"]) == (503, "unavailable")
            finally:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert api.get(c, "/api/v5/asset/deposit-history").json()["code"] == "0"
    finally:
        api.close()
        stack.stop()
