"""Balance reads under concurrency: coalesced statements never mix users up or read stale data."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import okx.Funding as OkxFunding
import psycopg

from stakehouse.db.engine import HOT_READS_APPLICATION, libpq_conninfo
from tests.stack import Creds, Stack, start_stack

warnings.filterwarnings("ignore", category=DeprecationWarning)


def funding(stack: Stack, c: Creds) -> OkxFunding.FundingAPI:
    return OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def funding_usdt(api: OkxFunding.FundingAPI) -> Decimal:
    reply = api.get_balances(ccy="USDT")
    assert reply["code"] == "0", reply
    return Decimal(reply["data"][0]["availBal"]) if reply["data"] else Decimal(0)


def test_concurrent_readers_each_see_their_own_balance_and_their_own_writes(stack: Stack) -> None:
    users = [stack.new_user(funds={"USDT": f"{1000 + i}.{i:02d}"}) for i in range(12)]

    def session(i: int) -> list[tuple[Decimal, Decimal]]:
        """Transfer 1.25 to trading, then read funding: each read must already show the transfer."""
        c = users[i]
        api = funding(stack, c)
        seen = []
        expected = Decimal(f"{1000 + i}.{i:02d}")
        for _ in range(6):
            moved = api.funds_transfer(ccy="USDT", amt="1.25", from_="6", to="18")
            assert moved["code"] == "0", moved
            expected -= Decimal("1.25")
            seen.append((funding_usdt(api), expected))
            seen.append((funding_usdt(api), expected))
        return seen

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(session, range(12)))
    for i, seen in enumerate(results):
        assert [got for got, _ in seen] == [want for _, want in seen], f"user {i}"
    for i, c in enumerate(users):
        assert stack.balances(c.uid)[("18", "USDT")] == Decimal("7.5"), i
    stack.audit_ok()


def test_balance_reads_survive_postgres_dropping_their_connections(make_db: Callable[[str], str]) -> None:
    s = start_stack(make_db("postgres"))
    try:
        c = s.new_user(funds={"USDT": "42.5"})
        api = funding(s, c)
        assert funding_usdt(api) == Decimal("42.5")
        with psycopg.connect(libpq_conninfo(s.services.settings.database_url), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s", (HOT_READS_APPLICATION,)).fetchall()
        assert killed and all(ok for (ok,) in killed)  # the server really had hot-read connections
        assert funding_usdt(api) == Decimal("42.5")  # answered on a fresh connection, no 50026
        assert funding_usdt(api) == Decimal("42.5")
    finally:
        s.stop()
