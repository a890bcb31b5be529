"""A server process killed (SIGKILL) in the middle of the daily rebate run (job ``nd_rebates``),
then restarted: every ND sub-account gets exactly one record for the day and every broker
exactly one payout, nothing skipped, nothing repeated.

The run is stopped at a known point without any hook in the code: the run pays the brokers one
after the other (in uid order), each payout locking the ledger rows it moves. The test holds a row
lock on the *second* broker's USDT funding account, so the run stops after it computed the day,
paid the first broker and wrote that broker's records (all inside its one transaction), waiting for
the second broker's row. Once PostgreSQL shows it waiting there, the process is killed.
(SQLite serialises writers on one file lock, so no outside session can hold a run half-way there;
the run's single transaction is the same code on both.)
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import psycopg

from stakehouse.assets.service import TransferRequest
from stakehouse.db.engine import libpq_conninfo
from stakehouse.trading.service import PlaceRequest
from stakehouse.wiring import Services
from tests.e2e.test_staking_crash import _advance_ignoring_errors
from tests.stack import ADMIN_TOKEN, start_server_process, start_stack

D = Decimal
HKT = dt.timezone(dt.timedelta(hours=8))
RATIO = D("0.4")  # the default ND ratio (broker level 1)
#: Per broker, per sub-account: the sizes (BTC) of its market buys on the crash day.
BUYS = [
    [["0.01", "0.00123457"], ["0.0031"], ["0.00777777", "0.002", "0.0005"]],
    [["0.004"], ["0.00333333", "0.01"], ["0.0012345"], ["0.0099"]],
]

Conn = psycopg.Connection[tuple[Any, ...]]


def one(conn: Conn, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def fill_rebate(net_fee: Decimal, markup: Decimal) -> Decimal:
    """Spec: ``ratio * netFee + markupFee`` per fill, rounded toward zero to 8 decimals."""
    return (RATIO * net_fee + markup).quantize(D("0.00000001"), rounding=ROUND_DOWN)


def usdt_funding(svc: Services, uid: str) -> Decimal:
    return {b.ccy: b.available for b in svc.assets.balances(uid, 6)}.get("USDT", D(0))


def make_brokers(svc: Services) -> dict[str, list[str]]:
    """Two ND brokers (each with a USDT deposit, so its funding account exists) with their
    sub-accounts, funded for trading; the first one marks its sub-accounts' taker fee up."""
    svc.prices.set_price("BTC-USDT", D("61234.57"))
    subs: dict[str, list[str]] = {}
    for b, plan in enumerate(BUYS):
        broker = svc.accounts.create_user(kyc_level=2).uid
        svc.broker.set_broker(broker, level=1)
        svc.chain.credit_deposit(broker, "USDT", D(5) + b)
        if b == 0:  # 7.5 bp on top of the base taker fee, from 00:00 HKT of the next day
            svc.broker.set_fee_rate(broker, chg_type="absolute", chg_taker="7.5")
        subs[broker] = []
        for i in range(len(plan)):
            sub = svc.accounts.create_sub_account(parent_uid=broker, sub_name=f"crash{i}{broker[-6:]}").uid
            svc.chain.credit_deposit(sub, "USDT", D(2000))
            svc.assets.transfer(sub, TransferRequest(ccy="USDT", amt=D(2000), from_type=6, to_type=18))
            subs[broker].append(sub)
    return subs


def make_fills(svc: Services, subs: dict[str, list[str]]) -> None:
    for plan, broker in zip(BUYS, subs, strict=True):
        for sizes, sub in zip(plan, subs[broker], strict=True):
            for sz in sizes:
                svc.trading.place(sub, PlaceRequest("BTC-USDT", "cash", "buy", "market", D(sz), None, "base_ccy"))
    # a user of no broker trades too: no rebate for that fill
    plain = svc.accounts.create_user(kyc_level=2).uid
    svc.chain.credit_deposit(plain, "USDT", D(1000))
    svc.assets.transfer(plain, TransferRequest(ccy="USDT", amt=D(1000), from_type=6, to_type=18))
    svc.trading.place(plain, PlaceRequest("BTC-USDT", "cash", "buy", "market", D("0.01"), None, "base_ccy"))


def hkt_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), HKT).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


def waiting_for_row(conn: Conn) -> list[int]:
    """Backends waiting for a row lock on ``ledger_accounts`` (the run's payout)."""
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query ILIKE '%ledger_accounts%FOR UPDATE%'").fetchall()
    return [int(r[0]) for r in rows]


def holds(conn: Conn, pid: int, table: str) -> bool:
    """Whether backend ``pid`` holds a write lock on ``table`` (it wrote there in its transaction)."""
    return bool(one(conn, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                          "WHERE l.pid = %s AND c.relname = %s AND l.mode = 'RowExclusiveLock' AND l.granted",
                    (pid, table)))


def snapshot(conn: Conn, svc: Services, brokers: list[str]) -> tuple[Any, ...]:
    """Everything the run writes: records, rebate entries and postings, job claims, balances."""
    return (
        conn.execute("SELECT broker_uid, uid, day, income, net_fee, markup_fee, entry_id FROM nd_rebate_records "
                     "ORDER BY id").fetchall(),
        conn.execute("SELECT id, type, idempotency_key FROM journal_entries WHERE type LIKE '%rebate%' "
                     "ORDER BY id").fetchall(),
        one(conn, "SELECT count(*) FROM postings p JOIN ledger_accounts a ON a.id = p.account_id "
                  "WHERE a.owner = 's:nd_rebates'"),
        conn.execute("SELECT job, period, result FROM job_runs WHERE job = 'nd_rebates' ORDER BY period").fetchall(),
        [usdt_funding(svc, b) for b in brokers],
    )


def test_killed_rebate_run_pays_every_broker_exactly_once(make_db: Callable[[str], str]) -> None:
    db = make_db("postgres")
    stack = start_stack(db)
    svc = stack.services
    svc.sandbox_clock.freeze()  # type: ignore[union-attr]
    subs = make_brokers(svc)
    svc.advance_clock(by=dt.timedelta(days=1))  # past 00:00 HKT: the markup is in force; day 0 runs, no fills
    crash_day = svc.clock.now().astimezone(HKT).date()
    make_fills(svc, subs)

    observer: Conn = psycopg.connect(libpq_conninfo(db), autocommit=True)
    # The run pays the brokers in uid order (the database's): the test stops it at the second.
    first, second = [r[0] for r in observer.execute("SELECT uid FROM users WHERE uid = ANY(%s) ORDER BY uid",
                                                    (list(subs),)).fetchall()]
    assert one(observer, "SELECT count(*) FROM job_runs WHERE job = 'nd_rebates' AND period = %s",
               ((crash_day - dt.timedelta(days=1)).isoformat(),)) == 1
    before = snapshot(observer, svc, [first, second])
    assert before[0] == [] and before[1] == []  # day 0 had no fills: no records, no payouts
    start, end = hkt_day_bounds(crash_day)
    day_fills = observer.execute("SELECT broker_uid, uid, net_fee_usdt, markup_usdt FROM fills "
                                 "WHERE ts >= %s AND ts < %s", (start, end)).fetchall()
    assert len(day_fills) == sum(len(sizes) for plan in BUYS for sizes in plan) + 1
    expected: dict[str, Decimal] = {}
    for broker_uid, uid, net_fee, markup in day_fills:
        if broker_uid is not None:
            assert net_fee > 0
            expected[uid] = expected.get(uid, D(0)) + fill_rebate(D(net_fee), D(markup))
    assert set(expected) == {u for us in subs.values() for u in us}
    marking_up, plain_fees = list(subs)  # the broker that marks its sub-accounts' fees up, the other
    assert all(D(m) > 0 for b, _, _, m in day_fills if b == marking_up)
    assert all(D(m) == 0 for b, _, _, m in day_fills if b == plain_fees)

    proc, base = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")
    locker: Conn = psycopg.connect(libpq_conninfo(db), autocommit=False)
    advance = threading.Thread(target=lambda: _advance_ignoring_errors(base), daemon=True)
    try:
        locked = locker.execute("SELECT id FROM ledger_accounts WHERE owner = %s AND acct_type = 6 AND ccy = 'USDT' "
                                "FOR UPDATE", (f"u:{second}",)).fetchall()
        assert len(locked) == 1  # the second broker's funding account exists (its deposit)
        advance.start()
        deadline = time.monotonic() + 60
        while not (waiting := waiting_for_row(observer)):
            assert time.monotonic() < deadline, "the rebate run never reached the locked account"
            assert advance.is_alive(), "the clock advance returned before the run reached the locked account"
            time.sleep(0.05)
        [run_pid] = waiting
        # Half-way: the first broker's payout and records are written inside the run's transaction,
        # the second broker's payout waits for its account; none of it is visible.
        assert holds(observer, run_pid, "nd_rebate_records") and holds(observer, run_pid, "journal_entries")
        assert snapshot(observer, svc, [first, second]) == before
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        locker.rollback()
        locker.close()
        if proc.poll() is None:  # a failure above: leave no server behind
            proc.kill()
            proc.wait(timeout=10)
    advance.join(timeout=30)
    # The killed run's backend ends once it finds its client gone; its transaction never commits.
    deadline = time.monotonic() + 30
    while one(observer, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (run_pid,)):
        assert time.monotonic() < deadline, "the killed run's backend did not end"
        time.sleep(0.05)
    assert snapshot(observer, svc, [first, second]) == before  # nothing of the crash day, no claim for it
    assert one(observer, "SELECT count(*) FROM job_runs WHERE job = 'nd_rebates' AND period = %s",
               (crash_day.isoformat(),)) == 0  # the claim went with the work

    proc, base = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")  # the restart
    try:
        ran = _advance(base, seconds=1)
        nd = [j for j in ran if j["job"] == "nd_rebates"]
        assert [j["period"] for j in nd] == [crash_day.isoformat()], ran
        assert f"ND 2 brokers, {len(subs[first]) + len(subs[second])} sub-accounts" in nd[0]["result"], nd
        assert [j for j in _advance(base, seconds=1) if j["job"] == "nd_rebates"] == []  # nothing left to run twice
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    key = crash_day.strftime("%Y%m%d")
    done = snapshot(observer, svc, [first, second])
    records, entries = done[0], done[1]
    assert sorted(r[1] for r in records) == sorted(expected), "one record per sub-account"
    for broker_uid, uid, day, income, _net_fee, _markup, entry_id in records:
        assert day == key and uid in subs[broker_uid] and D(income) == expected[uid], (uid, income, expected[uid])
        assert entry_id is not None
    assert [(t, k) for _, t, k in entries] == [("nd_rebate", f"nd_rebate:{b}:{crash_day.isoformat()}")
                                                 for b in (first, second)]
    for (entry_id, _, _), broker_uid, paid_before in zip(entries, (first, second), before[4], strict=True):
        total = sum((expected[u] for u in subs[broker_uid]), D(0))
        assert total == sum((D(r[3]) for r in records if r[0] == broker_uid), D(0)) and total > 0
        assert {r[6] for r in records if r[0] == broker_uid} == {entry_id}
        legs = observer.execute("SELECT a.owner, a.acct_type, p.amount FROM postings p JOIN ledger_accounts a ON "
                                "a.id = p.account_id WHERE p.entry_id = %s ORDER BY p.amount", (entry_id,)).fetchall()
        assert [(o, t, D(a)) for o, t, a in legs] == [("s:nd_rebates", legs[0][1], -total),
                                                      (f"u:{broker_uid}", 6, total)]
        assert usdt_funding(svc, broker_uid) == paid_before + total
    stack.audit_ok()

    # Run again: the in-process stack's runner, then a clock move short of the next 00:00 HKT.
    assert [r for r in svc.runner.run_due() if r.job == "nd_rebates"] == []
    assert [r for r in svc.advance_clock(by=dt.timedelta(hours=23)) if r.job == "nd_rebates"] == []
    assert snapshot(observer, svc, [first, second]) == done
    stack.audit_ok()
    observer.close()
    stack.stop()


def _advance(base: str, **by: int) -> list[dict[str, Any]]:
    r = httpx.post(base + "/admin/clock/advance", json=by, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                   timeout=60)
    assert r.status_code == 200, r.text
    ran: list[dict[str, Any]] = r.json()["jobsRun"]
    return ran
