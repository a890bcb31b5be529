#!/usr/bin/env python3
"""Benchmark: the daily staking reward run for many holders versus a bare set-based SQL floor.

For each backend (SQLite file, PostgreSQL database) and each number of holders, the script builds a fresh
database through ``Services``, bulk-loads the holders with set-based SQL (users, one BETH funding account each,
an opening journal entry whose postings back every balance, and the system accounts that mirror them), then
times in the same database:

* the **floor**: one bare ``SELECT`` computing every holder's gross and net reward without writing anything
  (the cost of scanning the holders once);
* the **reward run of day D** through the job runner (``staking_rewards:ETH``, one period): planned, then done
  in chunks of ``--chunk-size`` holders on ``--connections`` connections at once (issue 19), each chunk its
  eligible balances, ``staking_rewards`` rows and one journal entry crediting its holders, committed;
* the **reward run of day D+1** (steady state: the previous run's N reward postings are inside the day and
  are read back).

Usage (from the project root)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/reward_run.py [--holders 100000,1000000] [--backends sqlite,postgres]
          [--pg-url URL] [--rate 0.0365] [--fee-rate 0.1] [--floor-repeat 3] [--audit] [--tracemalloc]
          [--connections 2] [--chunk-size 50000]

Goals: on PostgreSQL with 2 connections, the run for 1 000 000 holders takes at most 0.8x the bare writes of
the same rows on one connection (issue 19; the ``writes s`` column); on SQLite under 60 s; time linear in
holders, Python memory flat.

Each (backend, holders) case runs in a child process of its own, so its peak-memory figure is not the
high-water mark of an earlier case. Memory is the growth of the process's peak resident set during the run
(``/proc/self/clear_refs`` resets the peak before each run; ``ru_maxrss`` where that is not allowed). It covers
everything in the Python process (the SQLite page cache included), not the PostgreSQL server.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import resource
import secrets
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from balances import postgres_backend, sqlite_backend  # bench/ is on the path: these scripts run from it

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = "ETH"
TOKEN = "BETH"
STAKED = "ETH"
UID_BASE = 10**15  # uids are 16-digit strings like the service's
SAT = 10**8  # amounts are generated in units of 1e-8 (8 decimals)
SQLITE_GOAL = 60.0  # seconds for 1 000 000 holders
PG_GOAL = 0.8  # the run / the single-connection bare writes of the same rows, for 1 000 000 holders


def holder_units(i: int) -> int:
    """Holder ``i``'s BETH balance in units of 1e-8: 1 to 101 BETH, scattered, 8 decimals."""
    return SAT + (i * 2654435761) % (100 * SAT)


# SQL versions of holder_units (must stay in step with it).
_PG_UNITS = f"({SAT} + mod(i::bigint * 2654435761, {100 * SAT}))"
_SQLITE_UNITS = f"({SAT} + (i * 2654435761) % {100 * SAT})"
# Canonical decimal text of SQLite money: integer part, '.', fraction without trailing zeros.
_SQLITE_TEXT = (f"(CAST(s.u / {SAT} AS TEXT) || CASE WHEN s.u % {SAT} = 0 THEN '' "
                f"ELSE '.' || rtrim(substr('00000000' || CAST(s.u % {SAT} AS TEXT), -8, 8), '0') END)")


# -- backends --------------------------------------------------------------------------------------


# -- bulk load -------------------------------------------------------------------------------------


def bulk_load(services: Any, n: int, opened_at: dt.datetime) -> None:
    """N live holders with a BETH funding balance each, as if they had bought it: one opening journal entry
    (before day D) with a posting per holder, ``s:issuance`` BETH at minus the total, and the ETH behind it in
    ``s:staked_principal`` (taken from ``s:custody``, where deposited coins are counted)."""
    from stakehouse.db.dialect import driver_params, driver_sql
    from stakehouse.db.tables import journal_entries
    from stakehouse.ledger.rules import FUNDING, SYSTEM, SYSTEM_ACCOUNTS

    pg = services.db.dialect == "postgresql"
    with services.db.write() as conn:
        def sql(statement: str, **params: Any) -> Any:
            return conn.exec_driver_sql(driver_sql(conn, statement), driver_params(conn, params))

        at = {"at": opened_at}
        if pg:
            series = f"FROM (SELECT i, {_PG_UNITS} AS u FROM generate_series(1, {n}) AS g(i)) s"
            amount = "(s.u * 0.00000001)"
        else:
            series = (f"FROM (WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}) "
                      f"SELECT i, {_SQLITE_UNITS} AS u FROM g) s")
            amount = _SQLITE_TEXT
        uid = f"CAST({UID_BASE} + s.i AS TEXT)" if not pg else f"({UID_BASE} + s.i)::text"
        sql(f"INSERT INTO users (uid, env, master_uid, parent_uid, level, sub_name, label, kyc_level, frozen, "
            f"frozen_funcs, can_trans_out, created_at) "
            f"SELECT {uid}, 'live', NULL, NULL, 0, NULL, '', 2, false, '', true, %(at)s {series}", **at)
        sql(f"INSERT INTO ledger_accounts (owner, uid, acct_type, ccy, allow_negative, available, locked, "
            f"updated_at) SELECT 'u:' || {uid}, {uid}, {FUNDING}, '{TOKEN}', false, {amount}, '0', %(at)s "
            f"{series} ORDER BY s.i", **at)
        entry_id = conn.execute(journal_entries.insert().values(
            type="bench_opening", ref="bench", idempotency_key="bench:opening", uid=None, created_at=opened_at,
            memo=f"{n} holders bought BETH").returning(journal_entries.c.id)).scalar_one()
        sql(f"INSERT INTO postings (entry_id, account_id, bucket, ccy, amount, created_at) "
            f"SELECT %(entry)s, a.id, 'available', a.ccy, a.available, %(at)s FROM ledger_accounts a "
            f"WHERE a.ccy = '{TOKEN}' AND a.uid IS NOT NULL ORDER BY a.id", entry=entry_id, **at)
        total_sql = "sum(available)" if pg else "decsum(available)"
        total = Decimal(sql(f"SELECT {total_sql} FROM ledger_accounts WHERE ccy = '{TOKEN}' "
                            "AND uid IS NOT NULL").scalar_one())
        expected = Decimal(sum(holder_units(i) for i in range(1, n + 1))) / SAT
        assert total == expected, (total, expected)
        for name, ccy, amount_value in (("issuance", TOKEN, -total), ("staked_principal", STAKED, total),
                                        ("custody", STAKED, -total)):
            account_id = sql("INSERT INTO ledger_accounts (owner, uid, acct_type, ccy, allow_negative, available, "
                             "locked, updated_at) VALUES (%(owner)s, NULL, %(type)s, %(ccy)s, %(neg)s, %(amount)s, "
                             "%(zero)s, %(at)s) RETURNING id", owner=f"s:{name}", type=SYSTEM, ccy=ccy,
                             neg=SYSTEM_ACCOUNTS[name], amount=amount_value, zero=Decimal(0), **at).scalar_one()
            sql("INSERT INTO postings (entry_id, account_id, bucket, ccy, amount, created_at) "
                "VALUES (%(entry)s, %(account)s, 'available', %(ccy)s, %(amount)s, %(at)s)",
                entry=entry_id, account=account_id, ccy=ccy, amount=amount_value, **at)
    # PostgreSQL: statistics and visibility as autovacuum would have them by now. SQLite: nothing, the
    # application never runs ANALYZE there, so its statements must be planned well without statistics.
    if pg:
        with services.db.query() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


# -- measurements ----------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Growth of the process's peak RSS over a block, in MB (reset of VmHWM where Linux allows it)."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.rss_mb = 0.0
        self.traced_mb: float | None = None

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self._reset = False
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
            self._reset = True
        before = _status_kb("VmRSS") if self._reset else None
        self._before_kb = before if before is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if self.trace:
            tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.trace:
            self.traced_mb = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        peak = _status_kb("VmHWM") if self._reset else None
        after = peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.rss_mb = max(0, after - self._before_kb) / 1024


@dataclass
class Run:
    seconds: float
    rss_mb: float
    traced_mb: float | None
    result: str


@dataclass
class Case:
    backend: str
    holders: int
    load_s: float = 0.0
    floor_s: float = 0.0
    writes_s: float | None = None
    day1: Run | None = None
    day2: Run | None = None
    verified: str = ""
    audit: str = ""
    #: --audit: the audit's seconds and the growth of the process's peak resident set while it ran
    audit_s: float | None = None
    audit_mb: float | None = None
    error: str = ""
    #: bench/provider_interest.py --explain: the plan of one chunk's read
    explain: str = ""


def floor_sql(pg: bool) -> str:
    """Every holder's gross and net, summed, nothing written. On SQLite money is text and SQLite's arithmetic
    on it is binary floating point: the figures are approximate, the cost (one scan and a multiplication per
    holder) is what the floor is for."""
    where = f"ccy = '{TOKEN}' AND acct_type IN (6, 18) AND uid IS NOT NULL"
    if pg:
        return (f"SELECT count(*), sum(g), sum(trunc(g * (1 - %(fee)s), 8)) FROM ("
                f"SELECT trunc(available * %(rate)s / 365, 8) AS g FROM ledger_accounts WHERE {where}) r")
    return (f"SELECT count(*), sum(g), sum(CAST(g * (1 - :fee) * 1e8 AS INTEGER) / 1e8) FROM ("
            f"SELECT CAST(CAST(available AS REAL) * :rate / 365 * 1e8 AS INTEGER) / 1e8 AS g "
            f"FROM ledger_accounts WHERE {where}) r")


def write_floor(services: Any, n: int, day: str, at: dt.datetime) -> float:
    """Seconds for bare set-based SQL to write what a run writes: N ``staking_rewards`` rows, a journal entry
    with N postings, N balance updates (values copied from the balances: no arithmetic, no joins), in one
    transaction that is rolled back. The part of a run no code can avoid with this schema."""
    from stakehouse.db.dialect import driver_params, driver_sql

    holders = f"FROM ledger_accounts a WHERE a.ccy = '{TOKEN}' AND a.uid IS NOT NULL AND a.acct_type IN (6, 18)"
    with services.db.engine.connect() as conn:
        def sql(statement: str, **params: Any) -> Any:
            return conn.exec_driver_sql(driver_sql(conn, statement), driver_params(conn, params))

        started = time.perf_counter()
        with conn.begin() as tx:
            sql(f"INSERT INTO staking_rewards (product, day, uid, eligible, gross, net, fee) "
                f"SELECT '{PRODUCT}', %(day)s, a.uid, a.available, a.available, a.available, '0' {holders} "
                "ORDER BY a.uid", day=day)
            entry = sql("INSERT INTO journal_entries (type, ref, idempotency_key, created_at, memo) "
                        "VALUES ('bench', 'bench', 'bench:writes', %(at)s, '') RETURNING id", at=at).scalar_one()
            written = sql(f"INSERT INTO postings (entry_id, account_id, bucket, ccy, amount, created_at) "
                          f"SELECT %(entry)s, a.id, 'available', a.ccy, a.available, %(at)s {holders} ORDER BY a.id",
                          entry=entry, at=at).rowcount
            updated = sql(f"UPDATE ledger_accounts SET available = available, updated_at = %(at)s "
                          f"WHERE id IN (SELECT a.id {holders})", at=at).rowcount
            assert written == updated == n, (written, updated)
            tx.rollback()
        return time.perf_counter() - started


def expected_nets(n: int, rate: Decimal, fee_rate: Decimal) -> tuple[int, int]:
    """Sum of net of day D and of day D+1 in units of 1e-8, by integer arithmetic from the generated balances
    (independent of the code under test): gross = floor(e * rate / 365), net = floor(gross * (1 - fee))."""
    r = int(rate * SAT)
    f = int(fee_rate * SAT)
    assert Decimal(r) / SAT == rate and Decimal(f) / SAT == fee_rate, "rate and fee with at most 8 decimals"
    day1 = day2 = 0
    for i in range(1, n + 1):
        units = holder_units(i)
        net1 = (units * r // (365 * SAT)) * (SAT - f) // SAT
        day1 += net1
        # Day D's reward is posted at 00:00 of D+1, inside D+1: the minimum over D+1 is the opening balance.
        eligible2 = min(units, units + net1)
        day2 += (eligible2 * r // (365 * SAT)) * (SAT - f) // SAT
    return day1, day2


def verify(services: Any, day: str, n: int, expected_net_units: int) -> str:
    from stakehouse.db.dialect import driver_params, driver_sql

    pg = services.db.dialect == "postgresql"
    agg = "sum" if pg else "decsum"
    with services.db.read() as conn:
        def one(statement: str, **params: Any) -> Any:
            return conn.exec_driver_sql(driver_sql(conn, statement), driver_params(conn, params)).one()

        count, net = one(f"SELECT count(*), {agg}(net) FROM staking_rewards WHERE product = %(p)s AND day = %(d)s",
                         p=PRODUCT, d=day)
        run = one("SELECT holders, net FROM staking_reward_runs WHERE product = %(p)s AND day = %(d)s",
                  p=PRODUCT, d=day)
        posted, entry_count = one(f"SELECT {agg}(p.amount), count(*) FROM postings p JOIN journal_entries e "
                                  "ON e.id = p.entry_id WHERE e.type = 'staking_reward' AND e.ref = %(r)s "
                                  "AND p.ccy = %(c)s "
                                  "AND p.account_id IN (SELECT id FROM ledger_accounts WHERE uid IS NOT NULL)",
                                  r=f"{PRODUCT}:{day}", c=TOKEN)
    expected = Decimal(expected_net_units) / SAT
    problems = []
    if count != n or int(run[0]) != n or entry_count != n:
        problems.append(f"{count} reward rows, run says {run[0]} holders, {entry_count} postings; expected {n}")
    if Decimal(net) != expected or Decimal(run[1]) != expected or Decimal(posted) != expected:
        problems.append(f"net {net}, run net {run[1]}, posted {posted}; expected {expected}")
    if problems:
        raise AssertionError(f"day {day}: " + "; ".join(problems))
    return f"{day}: {n} rows, net {expected}"


def timed_audit(services: Any, case: Case) -> None:
    """The full audit, into ``case``: its verdict, seconds and peak memory growth."""
    with PeakMemory(False) as mem:
        started = time.perf_counter()
        report = services.audit()
        case.audit_s = time.perf_counter() - started
    case.audit_mb = mem.rss_mb
    case.audit = "ok" if report.ok else json.dumps(report.as_dict())[:2000]


def run_case(backend: str, n: int, args: argparse.Namespace) -> Case:
    from stakehouse.config import Settings
    from stakehouse.security import new_server_key
    from stakehouse.staking.liquid import products
    from stakehouse.wiring import Services

    case = Case(backend, n)
    rate, fee_rate = Decimal(args.rate), Decimal(args.fee_rate)
    ctx = sqlite_backend() if backend == "sqlite" else postgres_backend(args.pg_url)
    with ctx as url:
        services = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(),
                                     admin_token="bench-" + secrets.token_hex(8), log_level="WARNING",
                                     job_connections=args.connections, job_chunk_size=args.chunk_size))
        try:
            pg = services.db.dialect == "postgresql"
            today = services.calendar.day(services.clock.now())
            day1 = today - dt.timedelta(days=3)
            day2 = day1 + dt.timedelta(days=1)
            p1, p2 = services.calendar.period_of_day(day1), services.calendar.period_of_day(day2)
            with services.db.write() as conn:
                products.update_product(conn, PRODUCT, {"service_fee_rate": str(fee_rate)}, services.clock.now())
            services.staking.publish_rate(PRODUCT, day1, rate)  # carried forward to D+1

            started = time.perf_counter()
            bulk_load(services, n, p1.start - dt.timedelta(days=1))
            case.load_s = time.perf_counter() - started
            net1, net2 = expected_nets(n, rate, fee_rate)
            if args.what_if_no_posting_fks and pg:  # a measured proposal, not the product's schema
                with services.db.write() as conn:
                    conn.exec_driver_sql("ALTER TABLE postings DROP CONSTRAINT fk_postings_entry_id_journal_entries, "
                                         "DROP CONSTRAINT fk_postings_account_id_ledger_accounts")

            from stakehouse.db.dialect import driver_params, driver_sql
            floors = []
            with services.db.read() as conn:
                for _ in range(args.floor_repeat):
                    started = time.perf_counter()
                    count, _gross, _net = conn.exec_driver_sql(
                        driver_sql(conn, floor_sql(pg)), driver_params(conn, {"rate": rate, "fee": fee_rate})).one()
                    floors.append(time.perf_counter() - started)
                    assert count == n, count
            case.floor_s = min(floors)

            job = next(j for j in services.jobs.jobs if j.name == f"staking_rewards:{PRODUCT}")
            runs = []
            for period, expected in ((p1, net1), (p2, net2)):
                with PeakMemory(args.tracemalloc) as mem:
                    started = time.perf_counter()
                    record = services.runner.run_one(job, period)
                    seconds = time.perf_counter() - started
                assert record is not None, "the period had already run"
                runs.append(Run(seconds, mem.rss_mb, mem.traced_mb, record.result))
                case.verified += ("; " if case.verified else "") + verify(services, period.key, n, expected)
            case.day1, case.day2 = runs
            if args.audit:
                timed_audit(services, case)
            if args.write_floor:  # last: what it leaves behind (dead rows) must not slow the runs
                p3 = services.calendar.period_of_day(day2 + dt.timedelta(days=1))
                case.writes_s = write_floor(services, n, p3.key, p3.end)
        finally:
            services.close()
    return case


# -- driver ----------------------------------------------------------------------------------------


def child(spec: str, args: argparse.Namespace, run: Callable[[str, int, argparse.Namespace], Case] | None = None
          ) -> int:
    """In a case's own process: run it (``run``, default this script's ``run_case``), print its result."""
    backend, n = spec.split(":")
    try:
        case = (run or run_case)(backend, int(n), args)
    except Exception as exc:  # reported by the parent
        case = Case(backend, int(n), error=f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300])
    print("RESULT " + json.dumps(asdict(case)), flush=True)
    return 0


def common_arguments(p: argparse.ArgumentParser, who: str) -> None:
    """The options every daily-run benchmark shares (``who``: holders, stakers)."""
    p.add_argument("--holders", default="100000,1000000", help="comma-separated sizes (default 100000,1000000)")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""),
                   help="PostgreSQL URL of an existing database to create the bench database from "
                        "(default: $STAKEHOUSE_TEST_PG_URL)")
    p.add_argument("--floor-repeat", type=int, default=3, help="floor runs, the fastest counts (default 3)")
    p.add_argument("--audit", action="store_true",
                   help="run the full audit after the runs, timed, with its peak memory (not a goal of the run)")
    p.add_argument("--no-write-floor", dest="write_floor", action="store_false",
                   help="skip the bare-writes reference (same rows written by plain SQL, rolled back)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="also trace Python allocations during the runs (slows them: timings are then inflated)")
    p.add_argument("--connections", type=int, default=2, help="connections doing a run's chunks (default 2)")
    p.add_argument("--chunk-size", type=int, default=50_000, help=f"{who} per chunk (default 50000)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: this process runs one backend:holders case


def sizes_and_backends(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[int], list[str]]:
    sizes = [int(s.replace("_", "")) for s in args.holders.split(",") if s.strip()]
    backends = []
    for b in (b.strip() for b in args.backends.split(",") if b.strip()):
        b = "postgres" if b in ("pg", "postgresql") else b
        if b not in ("sqlite", "postgres"):
            p.error(f"unknown backend {b!r}")
        if b == "postgres" and not args.pg_url:
            print("postgres: skipped (no --pg-url and STAKEHOUSE_TEST_PG_URL is not set)", flush=True)
            continue
        backends.append(b)
    return sizes, backends


def run_cases(script: str, args: argparse.Namespace, sizes: list[int], backends: list[str], extra: list[str]
              ) -> list[Case]:
    """Every (backend, size) case in a child process of ``script`` (the shared options, then ``extra``)."""
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"warning: 1-minute load average is {load1:.2f} before starting; timings will be noisy", flush=True)
    cases: list[Case] = []
    for backend in backends:
        for n in sizes:
            print(f"{backend} {n}: running ...", flush=True)
            cmd = [sys.executable, script, "--case", f"{backend}:{n}", "--pg-url", args.pg_url,
                   "--floor-repeat", str(args.floor_repeat), "--connections", str(args.connections),
                   "--chunk-size", str(args.chunk_size), *extra]
            cmd += ["--audit"] * args.audit + ["--tracemalloc"] * args.tracemalloc
            cmd += [] if args.write_floor else ["--no-write-floor"]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                case = Case(backend, n, error=(out.stderr.strip().splitlines() or ["no result"])[-1][:300])
            else:
                raw = json.loads(line[len("RESULT "):])
                for day in ("day1", "day2"):
                    raw[day] = Run(**raw[day]) if raw[day] else None
                case = Case(**raw)
            if case.error:
                print(f"  failed: {case.error}", flush=True)
            else:
                assert case.day1 is not None and case.day2 is not None
                print(f"  load {case.load_s:.1f}s, floor {case.floor_s:.3f}s, day 1 {case.day1.seconds:.2f}s "
                      f"({case.day1.result}), day 2 {case.day2.seconds:.2f}s; verified {case.verified}"
                      + (f"; audit {case.audit} in {case.audit_s:.2f}s, peak +{case.audit_mb:.0f} MB"
                         if case.audit else ""), flush=True)
            cases.append(case)
    return cases


def growth(cases: list[Case], who: str, *, writes: bool = False) -> list[str]:
    """Per backend, how the smallest and the largest case compare (linear = the size's ratio)."""
    lines = []
    for backend in dict.fromkeys(c.backend for c in cases):
        done = sorted((c for c in cases if c.backend == backend and c.day1 and c.day2 and not c.error),
                      key=lambda c: c.holders)
        if len(done) >= 2:
            lo, hi = done[0], done[-1]
            assert lo.day1 and lo.day2 and hi.day1 and hi.day2
            grow = hi.holders / lo.holders
            w = f", writes x{hi.writes_s / lo.writes_s:.1f}" if writes and hi.writes_s and lo.writes_s else ""
            lines.append(f"{backend}: x{grow:g} {who} -> day 1 x{hi.day1.seconds / lo.day1.seconds:.1f}, "
                         f"day 2 x{hi.day2.seconds / lo.day2.seconds:.1f}, floor x{hi.floor_s / lo.floor_s:.1f}"
                         f"{w} (linear = x{grow:g})")
    return lines


def shared_cells(c: Case) -> tuple[str, str, str]:
    """The cells both daily-run tables have: the bare writes' seconds, each day against them, and the
    peak memory of each day (with Python's own when traced)."""
    assert c.day1 is not None and c.day2 is not None
    d1, d2 = c.day1.seconds, c.day2.seconds
    writes = f"{c.writes_s:.2f}" if c.writes_s is not None else "-"
    wratio = f"{d1 / c.writes_s:.2f}/{d2 / c.writes_s:.2f}" if c.writes_s else "-"
    mem = f"{c.day1.rss_mb:.0f}/{c.day2.rss_mb:.0f}"
    if c.day1.traced_mb is not None and c.day2.traced_mb is not None:
        mem += f" (py {c.day1.traced_mb:.0f}/{c.day2.traced_mb:.0f})"
    return writes, wratio, mem


def fmt_table(cases: list[Case]) -> str:
    head = (f"{'backend':<9} {'holders':>9} {'load s':>7} {'floor s':>8} {'writes s':>9} {'day 1 s':>8} "
            f"{'day 2 s':>8} {'run/floor':>10} {'run/writes':>11} {'peak MB d1/d2':>14}  goal (1M)")
    lines = [head, "-" * len(head)]
    for c in cases:
        if c.error or c.day1 is None or c.day2 is None:
            lines.append(f"{c.backend:<9} {c.holders:>9} failed: {c.error}")
            continue
        d1, d2 = c.day1.seconds, c.day2.seconds
        ratio = f"{d1 / c.floor_s:.0f}/{d2 / c.floor_s:.0f}" if c.floor_s else "-"
        writes, wratio, mem = shared_cells(c)
        goal = ""
        if c.day1.traced_mb is not None:
            goal = "(traced: times inflated)"
        elif c.holders == 1_000_000 and c.backend == "sqlite":
            goal = f"<{SQLITE_GOAL:g}s {'met' if max(d1, d2) < SQLITE_GOAL else 'NOT met'}"
        elif c.holders == 1_000_000 and c.writes_s:
            goal = f"<={PG_GOAL:g}x writes {'met' if max(d1, d2) <= PG_GOAL * c.writes_s else 'NOT met'}"
        lines.append(f"{c.backend:<9} {c.holders:>9} {c.load_s:>7.1f} {c.floor_s:>8.3f} {writes:>9} {d1:>8.2f} "
                     f"{d2:>8.2f} {ratio:>10} {wratio:>11} {mem:>14}  {goal}")
    return "\n".join(lines + growth(cases, "holders"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    common_arguments(p, "holders")
    p.add_argument("--rate", default="0.0365", help="published APY (default 0.0365)")
    p.add_argument("--fee-rate", default="0.1", help="the product's service fee rate (default 0.1)")
    p.add_argument("--what-if-no-posting-fks", action="store_true",
                   help="PostgreSQL: drop the two foreign keys of postings after the load (a proposal, measured)")
    args = p.parse_args()
    if args.case:
        return child(args.case, args)
    sizes, backends = sizes_and_backends(p, args)
    print(f"cpus={os.cpu_count()} rate={args.rate} fee_rate={args.fee_rate} holders={sizes} "
          f"backends={backends} connections={args.connections} chunk_size={args.chunk_size}"
          + (" WHAT-IF: postings without foreign keys" if args.what_if_no_posting_fks else ""),
          flush=True)
    cases = run_cases(__file__, args, sizes, backends, ["--rate", args.rate, "--fee-rate", args.fee_rate]
                      + ["--what-if-no-posting-fks"] * args.what_if_no_posting_fks)
    print()
    print(fmt_table(cases))
    return 0 if all(not c.error for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
