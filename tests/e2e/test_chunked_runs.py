"""Chunked daily runs (``jobs/chunks.py``) through the public surfaces, with real faults.

- In chunks of 4 holders on 2 connections, the reward run pays every holder exactly what one
  transaction pays (a second installation with one chunk is the reference), one journal entry
  per chunk; the run's record (admin API, CLI) shows the chunks planned and done and the totals.
- PostgreSQL: the server process is killed (SIGKILL) with some chunks done and one in flight (it
  waits on a holder's account that the test holds locked). The audit passes on the run in
  progress; after a restart only the missing chunk is done and nobody is paid twice.
- PostgreSQL: the connection of a chunk in flight is terminated (``pg_terminate_backend``, as a
  failover does): the chunk is rolled back and done again on a new connection.
- ``stakehouse worker --metrics-port``: the job worker, which does the chunks in production, serves
  their metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import psycopg
from prometheus_client import REGISTRY

from stakehouse.config import Settings
from stakehouse.db.engine import libpq_conninfo
from stakehouse.security import new_server_key
from stakehouse.staking.liquid.service import HistoryQuery
from stakehouse.wiring import Services
from tests.e2e.test_staking_crash import _advance_ignoring_errors, waiting_on_locks
from tests.service.test_cli import cli
from tests.stack import ADMIN_TOKEN, Stack, free_port, start_server_process, start_stack

JOB = "staking_rewards:ETH"
#: 14 holders in chunks of 4: chunks of 4, 4, 4 and 2.
AMOUNTS = [Decimal("0.5") + Decimal(n) * Decimal("0.37") for n in range(13)] + [Decimal("2.12345678")]


def holders(svc: Services) -> list[tuple[str, Decimal]]:
    """Every holder buys on day 0 (so day 1 pays them); the day's rate is 5 %."""
    svc.sandbox_clock.freeze()  # type: ignore[union-attr]
    svc.staking.publish_rate("ETH", svc.staking.today(), Decimal("0.05"))
    out = []
    for amount in AMOUNTS:
        user = svc.accounts.create_user(kyc_level=2, accept_terms=("ETH",))
        svc.chain.credit_deposit(user.uid, "ETH", Decimal(10))
        svc.staking.purchase(user.uid, "ETH", amount)
        out.append((user.uid, amount))
    return out


def paid(svc: Services, people: list[tuple[str, Decimal]]) -> list[tuple[Decimal, list[tuple[Decimal, Decimal]]]]:
    """Per holder (by amount bought): every reward row's (eligible, net)."""
    return [(amount, [(row["eligible"], row["net"]) for row in svc.staking.rewards_of(uid, "ETH")])
            for uid, amount in people]


def third(amount: Decimal) -> Decimal:
    return (amount / 3).quantize(Decimal("0.00000001"), ROUND_DOWN)


def uid_balances(svc: Services, uid: str) -> dict[str, Decimal]:
    return {b.ccy: b.available for b in svc.assets.balances(uid, 6)}


def reward_entries(svc: Services, day: str) -> int:
    with svc.db.read() as conn:
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM journal_entries WHERE type = 'staking_reward' AND ref = 'ETH:" + day + "'"
        ).scalar_one())


def test_a_chunked_run_pays_what_one_transaction_pays(backend: str, make_db: Callable[[str], str]) -> None:
    chunked = start_stack(make_db(backend), job_chunk_size=4, job_connections=2)
    single = start_stack(make_db(backend), job_chunk_size=1000)
    try:
        results, settled = [], []
        for stack in (chunked, single):
            svc = stack.services
            people = holders(svc)
            # every holder also queues a redemption of a third on day 0, delivered by day 1's settlement
            svc.staking.update_product("ETH", {"fast_redemption_enabled": False, "unbonding_days": "1"})
            for uid, amount in people:
                assert svc.staking.redeem(uid, "ETH", third(amount)).status == "pending"
            svc.advance_clock(by=dt.timedelta(days=3))
            results.append(paid(svc, people))
            settled.append([(uid_balances(svc, uid), [(o.status, o.amt) for o in svc.staking.history(
                uid, "ETH", HistoryQuery(type="redeem"))]) for uid, _ in people])
            stack.audit_ok()
        assert results[0] == results[1] and settled[0] == settled[1]
        assert all(len(rows) == 2 and rows[0][1] > 0 for _, rows in results[0])  # days 1 and 2 paid everyone
        assert [s[1] for s in settled[0]] == [[("success", third(a))] for a in AMOUNTS]  # every one delivered
        assert all(s[0]["ETH"] == 10 - a + third(a) for s, a in zip(settled[0], AMOUNTS, strict=True))
        settlement = [r for r in chunked.call("GET", "/admin/jobs/runs?job=staking_settlement:ETH&limit=10")
                      if r["totals"]["parts"] != "0"]
        assert [(r["chunksPlanned"], r["chunksDone"], r["totals"]["parts"]) for r in settlement] == [(4, 4, "14")]
        assert Decimal(settlement[0]["totals"]["delivered"]) == sum(map(third, AMOUNTS), Decimal(0))

        svc = chunked.services
        runs = {r["period"]: r for r in chunked.call("GET", f"/admin/jobs/runs?job={JOB}&limit=10")}
        paying = [r for r in runs.values() if r["totals"]["holders"] != "0"]
        assert len(paying) == 2 and len(runs) == 3, runs  # day 0 (bought that day) paid nobody
        day_one = min(paying, key=lambda r: r["period"])
        assert (day_one["state"], day_one["chunksPlanned"], day_one["chunksDone"]) == ("finished", 4, 4)
        net = sum((rows[0][1] for _, rows in results[0]), Decimal(0))
        assert Decimal(day_one["totals"]["net"]) == net and day_one["totals"]["holders"] == "14"
        assert (day_one["totals"]["entries"], day_one["params"]) == ("4", {"rate": "0.05", "chunks": "4"})
        assert reward_entries(svc, day_one["period"]) == 4
        assert reward_entries(single.services, min(p["period"] for p in single.call(
            "GET", f"/admin/jobs/runs?job={JOB}") if p["totals"]["holders"] != "0")) == 1
        record = next(r for r in svc.staking.reward_runs("ETH") if r["day"] == day_one["period"])
        assert (record["holders"], record["net"], record["entry_id"]) == (14, net, None)  # one entry per chunk

        # the operator's CLI: the run's record, and a progress bar that ends at once on a finished run
        done = cli("jobs", "runs", "--job", JOB, db=svc.settings.database_url, key=svc.settings.server_key)
        assert done.returncode == 0, done.stderr
        assert {r["period"]: r["chunksDone"] for r in json.loads(done.stdout)}[day_one["period"]] == 4
        done = cli("jobs", "watch", JOB, day_one["period"], db=svc.settings.database_url,
                   key=svc.settings.server_key)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout[done.stdout.index("{"):])["totals"] == day_one["totals"]
        done = cli("jobs", "watch", JOB, "1999-01-01", db=svc.settings.database_url, key=svc.settings.server_key)
        assert done.returncode != 0 and "does not exist" in done.stderr
        # a day whose run happened keeps its rate
        refused = chunked.admin.put(f"/admin/staking/products/ETH/rates/{day_one['period']}", json={"rate": "0.9"})
        assert refused.status_code == 403 and "reward run" in refused.text, refused.text
    finally:
        chunked.stop()
        single.stop()


def _holder_account(observer: psycopg.Connection[Any], uid: str) -> int:
    row = observer.execute("SELECT id FROM ledger_accounts WHERE uid = %s AND ccy = 'BETH' AND acct_type = 6",
                           (uid,)).fetchone()
    assert row is not None
    return int(str(row[0]))


def _chunks(observer: psycopg.Connection[Any], day: str) -> tuple[int, int]:
    row = observer.execute("SELECT count(*), count(done_at) FROM job_run_chunks WHERE job = %s AND period = %s",
                           (JOB, day)).fetchone()
    assert row is not None
    return int(str(row[0])), int(str(row[1]))


def _prepare(make_db: Callable[[str], str]) -> tuple[Stack, list[tuple[str, Decimal]], str]:
    """Holders paid for day 1; the clock at the start of day 2, whose run the test interrupts."""
    db = make_db("postgres")
    stack = start_stack(db, job_chunk_size=4, job_connections=2, job_poll_seconds=3600)  # runs only when told
    people = holders(stack.services)
    stack.services.advance_clock(by=dt.timedelta(days=1))
    day = stack.services.staking.today().isoformat()
    return stack, people, day


def _assert_paid_once(stack: Stack, people: list[tuple[str, Decimal]], day: str) -> None:
    svc = stack.services
    for uid, _ in people:
        rows = svc.staking.rewards_of(uid, "ETH")
        assert [r["day"] for r in rows][-1] == day and len({r["day"] for r in rows}) == len(rows), rows
        total = sum((r["net"] for r in rows), Decimal(0))
        assert svc.staking.balance(uid, "ETH").total_accrual == total  # type: ignore[union-attr]
    assert reward_entries(svc, day) == 4
    run = next(r for r in svc.runner.runs(job=JOB) if r.period == day)
    assert (run.finished, run.planned, run.done) == (True, 4, 4)
    stack.audit_ok()


def test_a_killed_chunked_run_resumes_with_only_the_missing_chunk(make_db: Callable[[str], str]) -> None:
    stack, people, day = _prepare(make_db)
    svc = stack.services
    db = svc.settings.database_url
    blocked = sorted(uid for uid, _ in people)[9]  # in the third chunk (holders 8-11 in uid order)
    proc, base = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600",
                                      STAKEHOUSE_JOB_CHUNK_SIZE="4", STAKEHOUSE_JOB_CONNECTIONS="2")
    observer = psycopg.connect(libpq_conninfo(db), autocommit=True)
    locker = psycopg.connect(libpq_conninfo(db), autocommit=False)
    try:
        locker.execute("SELECT id FROM ledger_accounts WHERE id = %s FOR UPDATE", (_holder_account(observer, blocked),))
        advance = threading.Thread(target=lambda: _advance_ignoring_errors(base), daemon=True)
        advance.start()
        deadline = time.monotonic() + 60
        while _chunks(observer, day) != (4, 3) or waiting_on_locks(observer) == 0:
            assert time.monotonic() < deadline, ("the run never got stuck on the held account", _chunks(observer, day))
            time.sleep(0.05)
        # a run in progress: three chunks paid and visible, the audit knows it and passes
        report = stack.admin.get("/admin/audit").json()
        assert report["ok"], report
        assert any("1 in progress" in c["name"] for c in report["checks"]), report
        running = stack.call("GET", "/admin/jobs/runs?running=true")
        assert [(r["job"], r["period"], r["chunksDone"]) for r in running] == [(JOB, day, 3)]
        assert observer.execute("SELECT count(*) FROM staking_reward_runs WHERE day = %s", (day,)).fetchone() == (0,)
        # the plan fixed the day's rate: it can no longer change, though the run has not finished
        refused = stack.admin.put(f"/admin/staking/products/ETH/rates/{day}", json={"rate": "0.9"})
        assert refused.status_code == 403 and "reward run" in refused.text, refused.text
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        locker.rollback()
        locker.close()
    advance.join(timeout=30)
    assert _chunks(observer, day) == (4, 3)  # the chunk in flight left nothing
    assert observer.execute("SELECT chunk FROM job_run_chunks WHERE job = %s AND period = %s AND done_at IS NULL",
                            (JOB, day)).fetchall() == [(2,)]

    proc, base = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600",
                                      STAKEHOUSE_JOB_CHUNK_SIZE="4")  # the restart
    try:
        r = httpx.post(base + "/admin/clock/advance", json={"seconds": 1},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
        assert r.status_code == 200, r.text
        assert JOB in [j["job"] for j in r.json()["jobsRun"] if j["period"] == day]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    observer.close()
    _assert_paid_once(stack, people, day)
    stack.stop()


def test_a_chunk_whose_connection_is_terminated_is_done_again(make_db: Callable[[str], str]) -> None:
    stack, people, day = _prepare(make_db)
    svc = stack.services
    db = svc.settings.database_url
    retries = REGISTRY.get_sample_value("stakehouse_job_chunk_retries_total", {"job": JOB}) or 0.0
    blocked = sorted(uid for uid, _ in people)[5]  # in the second chunk
    observer = psycopg.connect(libpq_conninfo(db), autocommit=True)
    locker = psycopg.connect(libpq_conninfo(db), autocommit=False)
    errors: list[BaseException] = []

    def advance() -> None:
        try:
            svc.advance_clock(by=dt.timedelta(days=1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        locker.execute("SELECT id FROM ledger_accounts WHERE id = %s FOR UPDATE", (_holder_account(observer, blocked),))
        worker = threading.Thread(target=advance, daemon=True)
        worker.start()
        deadline = time.monotonic() + 60
        while True:
            row = observer.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event_type = 'Lock'").fetchone()
            if row is not None and _chunks(observer, day)[1] == 3:
                break
            assert time.monotonic() < deadline, "the chunk never waited on the held account"
            time.sleep(0.05)
        observer.execute("SELECT pg_terminate_backend(%s)", (row[0],))
    finally:
        locker.rollback()
        locker.close()
    worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    observer.close()
    assert REGISTRY.get_sample_value("stakehouse_job_chunk_retries_total", {"job": JOB}) == retries + 1
    _assert_paid_once(stack, people, day)
    stack.stop()


def test_the_job_worker_serves_the_chunks_metrics(make_db: Callable[[str], str]) -> None:
    """``stakehouse worker --metrics-port``: the process that does the chunks serves their metrics
    (in production no API process runs a chunk)."""
    db = make_db("sqlite")
    svc = Services(Settings(database_url=db, sandbox=True, server_key=new_server_key(), admin_token="t",
                            log_level="WARNING", job_poll_seconds=3600))
    try:
        holders(svc)  # 14 holders: the day's reward run is 4 chunks of 4
        assert svc.sandbox_clock is not None
        svc.sandbox_clock.set_to(svc.clock.now() + dt.timedelta(days=1))  # due, not run: the worker runs it
        key = svc.settings.server_key
    finally:
        svc.close()
    port = free_port()
    env = {**os.environ, "STAKEHOUSE_SERVER_KEY": key, "STAKEHOUSE_JOB_CHUNK_SIZE": "4",
           "STAKEHOUSE_JOB_POLL_SECONDS": "0.2", "STAKEHOUSE_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "stakehouse.cli", "worker", "--db", db, "--metrics-port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, text = time.monotonic() + 60, ""
        while 'stakehouse_job_chunks_done_total{job="staking_rewards:ETH"} 4.0' not in text:
            assert time.monotonic() < deadline and worker.poll() is None, (text[-2000:], worker.poll())
            time.sleep(0.2)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                continue
        assert 'stakehouse_job_chunk_seconds_count{job="staking_rewards:ETH"} 4.0' in text
    finally:
        worker.terminate()
        worker.wait(timeout=30)
