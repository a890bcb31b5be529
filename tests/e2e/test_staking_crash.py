"""A server process killed (SIGKILL) in the middle of a reward run, then restarted: every holder
is paid exactly once, nothing is skipped, nothing is repeated (staking rules 5.4).

The run is stopped at a known point without any hook in the code: the test holds a row lock on
the ``s:validator_rewards`` account, which the run locks only after it has computed every reward,
written the postings and moved every holder's balance. Once PostgreSQL shows the run waiting for
that lock, the process is killed. (SQLite serialises writers on one file lock, so no outside
session can hold a run half-way there; the run's single transaction is the same code on both.)
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import psycopg

from stakehouse.db.engine import libpq_conninfo
from tests.stack import ADMIN_TOKEN, start_server_process, start_stack

HOLDERS = 25


def waiting_on_locks(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'").fetchone()
    assert row is not None
    return int(str(row[0]))


def test_killed_reward_run_is_neither_repeated_nor_skipped(make_db: Callable[[str], str]) -> None:
    db = make_db("postgres")
    stack = start_stack(db)
    svc = stack.services
    svc.sandbox_clock.freeze()
    svc.staking.publish_rate("ETH", svc.staking.today(), Decimal("0.05"))
    holders = []
    for n in range(HOLDERS):
        user = svc.accounts.create_user(kyc_level=2, accept_terms=("ETH",))
        svc.chain.credit_deposit(user.uid, "ETH", Decimal(10))
        svc.staking.purchase(user.uid, "ETH", Decimal(1) + Decimal(n) / 8 if n % 3 else Decimal("2.12345678"))
        holders.append(user.uid)
    svc.advance_clock(by=dt.timedelta(days=2))  # day 0: nothing (bought that day); day 1: first rewards
    crash_day = svc.staking.today()
    paid_before = {uid: len(svc.staking.rewards_of(uid, "ETH")) for uid in holders}
    assert set(paid_before.values()) == {1}

    proc, base = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")
    locker = psycopg.connect(libpq_conninfo(db), autocommit=False)
    observer = psycopg.connect(libpq_conninfo(db), autocommit=True)
    try:
        locker.execute("SELECT id FROM ledger_accounts WHERE owner = 's:validator_rewards' FOR UPDATE")
        advance = threading.Thread(target=lambda: _advance_ignoring_errors(base), daemon=True)
        advance.start()
        deadline = time.monotonic() + 30
        while waiting_on_locks(observer) == 0:
            assert time.monotonic() < deadline, "the reward run never reached the locked account"
            time.sleep(0.05)
        # The run is half-way: rewards computed and posted inside its transaction, none visible.
        assert observer.execute("SELECT count(*) FROM staking_reward_runs WHERE day = %s",
                                (crash_day.isoformat(),)).fetchone() == (0,)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        locker.rollback()
        locker.close()
    advance.join(timeout=30)
    assert observer.execute("SELECT count(*) FROM staking_reward_runs WHERE day = %s",
                            (crash_day.isoformat(),)).fetchone() == (0,)

    proc, base = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")  # the restart
    try:
        r = httpx.post(base + "/admin/clock/advance", json={"seconds": 1},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
        assert r.status_code == 200, r.text
        ran = [j["job"] for j in r.json()["jobsRun"] if j["period"] == crash_day.isoformat()]
        assert "staking_rewards:ETH" in ran
        r = httpx.post(base + "/admin/clock/advance", json={"seconds": 1},  # nothing left to run twice
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
        assert [j for j in r.json()["jobsRun"] if j["job"].startswith("staking_rewards")] == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    for uid in holders:
        rows = svc.staking.rewards_of(uid, "ETH")
        assert [row["day"] for row in rows] == [(crash_day - dt.timedelta(days=1)).isoformat(),
                                                 crash_day.isoformat()], uid
        # The crash day pays on top of day 1's reward, which is not yet eligible (earns from day 3).
        assert rows[1]["eligible"] == rows[0]["eligible"]
        total = sum((row["net"] for row in rows), Decimal(0))
        assert svc.staking.balance(uid, "ETH").total_accrual == total  # type: ignore[union-attr]
    count = observer.execute("SELECT count(*) FROM journal_entries WHERE type = 'staking_reward'").fetchone()
    assert count == (2,)
    observer.close()
    stack.audit_ok()
    stack.stop()


def _advance_ignoring_errors(base: str) -> None:
    try:
        httpx.post(base + "/admin/clock/advance", json={"days": 1},
                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    except httpx.TransportError:
        pass  # the server is killed while this request waits
