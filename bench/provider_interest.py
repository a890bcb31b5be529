#!/usr/bin/env python3
"""Benchmark: the daily interest run of provider staking for many stakers versus bare set-based SQL.

For each backend (SQLite file, PostgreSQL database) and each number of stakers, the script builds a fresh
database through ``Services`` (sandbox, clock frozen at a fixed moment as the service tests do), creates one
provider product (ETH, precision 8) and publishes its rate through the services, bulk-loads the stakers with
set-based SQL (users, one staking account each, type ``staking_type(provider_no)``; an opening journal entry
before day D whose postings back every balance, ``s:custody`` at minus the total; a ``Deposit`` event each, so
that the balances equal their history), then times in the same database:

* the **floor**: one bare ``SELECT`` computing every staker's interest without writing anything (the cost of
  scanning the stakers once);
* the **interest run of day D** through the job runner (``provider_interest``, one period): planned, then done
  in chunks of ``--chunk-size`` stakers on ``--connections`` connections at once, each chunk its stakers'
  eligible balances, ``Interest`` events and one journal entry crediting them from ``s:validator_rewards``;
* the **interest run of day D+1** (steady state: day D's N interest postings, stamped at D+1's very start,
  are inside D+1 and are read back);
* the **bare writes** (last, on one connection, rolled back): the same rows written by plain SQL, N
  ``Interest`` events, one journal entry with N postings, N balance updates (values copied: no arithmetic, no
  joins). The part of a run no code can avoid with this schema.

Each run is verified against an independent computation (integer arithmetic on the generated balances):
N ``Interest`` events, N postings and the ``provider_accrual_runs`` row, each totalling
``sum(round_down(eligible * rate_bps / 10000 / 365, 8))``, where day D+1's eligible balance includes day D's
interest (it compounds).

Usage (from the project root)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/provider_interest.py [--holders 100000,1000000] [--backends sqlite,postgres]
          [--pg-url URL] [--rate-bps 400] [--floor-repeat 3] [--audit] [--tracemalloc] [--explain]
          [--connections 2] [--chunk-size 50000]

``--explain`` (PostgreSQL) also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of one chunk's read of the day's moves
(the select of ``runs._holdings`` joining postings, ledger_accounts and journal_entries): the statement the run
of D+1 sent, captured as it ran, re-run with day D+2's start (whose state is D+1's: the previous day's
interest postings at its start), after the timed runs.

Goals: time per staker flat as stakers grow (``runs.py``: "the work is linear in stakers"), Python memory
flat; the ``writes s`` column tells how far a run is from the bare writes of its rows.

Each (backend, stakers) case runs in a child process of its own, so its peak-memory figure is not the
high-water mark of an earlier case; memory is measured as in ``reward_run.py`` (growth of the process's peak
resident set during the run, the SQLite page cache included, not the PostgreSQL server).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from balances import postgres_backend, sqlite_backend  # bench/ is on the path: these scripts run from it
from reward_run import (
    SAT,
    UID_BASE,
    Case,
    PeakMemory,
    Run,
    child,
    common_arguments,
    growth,
    holder_units,
    run_cases,
    shared_cells,
    sizes_and_backends,
    timed_audit,
)

ROOT = Path(__file__).resolve().parent.parent
CCY = "ETH"
PRECISION = 8  # the product's precision; balances are generated with 8 decimals too
#: The frozen business time (a Tuesday noon UTC, as the service tests): accrual day 2026-03-10.
START = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


# SQL versions of holder_units (must stay in step with it).
_PG_UNITS = f"({SAT} + mod(i::bigint * 2654435761, {100 * SAT}))"
_SQLITE_UNITS = f"({SAT} + (i * 2654435761) % {100 * SAT})"
# Canonical decimal text of SQLite money: integer part, '.', fraction without trailing zeros.
_SQLITE_TEXT = (f"(CAST(s.u / {SAT} AS TEXT) || CASE WHEN s.u % {SAT} = 0 THEN '' "
                f"ELSE '.' || rtrim(substr('00000000' || CAST(s.u % {SAT} AS TEXT), -8, 8), '0') END)")


# -- setup -----------------------------------------------------------------------------------------


def open_services(url: str, args: argparse.Namespace) -> Any:
    """``Services`` on a fresh database whose sandbox clock is frozen at ``START`` (seeded before the services
    start, so that the job origin is that moment too), market prices held still."""
    from stakehouse.config import Settings
    from stakehouse.db.engine import Database
    from stakehouse.db.migrate import upgrade
    from stakehouse.sandbox.clock import SandboxClock
    from stakehouse.security import new_server_key
    from stakehouse.wiring import Services

    db = Database(url)
    upgrade(db)
    SandboxClock(db).ensure(start=START, running=False)
    db.dispose()
    services = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(),
                                 admin_token="bench-" + secrets.token_hex(8), log_level="WARNING",
                                 job_connections=args.connections, job_chunk_size=args.chunk_size))
    assert services.clock.now() == START
    for path in services.prices.paths():
        services.prices.set_path(path.inst_id, walk=False)
    return services


def bulk_load(services: Any, provider_no: int, n: int, opened_at: dt.datetime) -> None:
    """N live stakers with a staking balance each, as if they had deposited and staked it: one opening journal
    entry (before day D) with a posting per staker and ``s:custody`` at minus the total (where deposited coins
    are counted; the funding legs of deposit and stake cancel out), and a ``Deposit`` event per staker (the
    provider audit: every staking balance equals its history)."""
    from stakehouse.db.dialect import driver_params, driver_sql
    from stakehouse.db.tables import journal_entries
    from stakehouse.ledger.rules import SYSTEM, SYSTEM_ACCOUNTS, staking_type

    pg = services.db.dialect == "postgresql"
    acct_type = staking_type(provider_no)
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
        stakers = f"FROM ledger_accounts a WHERE a.acct_type = {acct_type} AND a.ccy = '{CCY}' AND a.uid IS NOT NULL"
        sql(f"INSERT INTO users (uid, env, master_uid, parent_uid, level, sub_name, label, kyc_level, frozen, "
            f"frozen_funcs, can_trans_out, created_at) "
            f"SELECT {uid}, 'live', NULL, NULL, 0, NULL, '', 2, false, '', true, %(at)s {series}", **at)
        sql(f"INSERT INTO ledger_accounts (owner, uid, acct_type, ccy, allow_negative, available, locked, "
            f"updated_at) SELECT 'u:' || {uid}, {uid}, {acct_type}, '{CCY}', false, {amount}, '0', %(at)s "
            f"{series} ORDER BY s.i", **at)
        entry_id = conn.execute(journal_entries.insert().values(
            type="bench_opening", ref="bench", idempotency_key="bench:opening", uid=None, created_at=opened_at,
            memo=f"{n} stakers deposited and staked {CCY}").returning(journal_entries.c.id)).scalar_one()
        sql(f"INSERT INTO postings (entry_id, account_id, bucket, ccy, amount, created_at) "
            f"SELECT %(entry)s, a.id, 'available', a.ccy, a.available, %(at)s {stakers} ORDER BY a.id",
            entry=entry_id, **at)
        sql(f"INSERT INTO provider_events (uid, provider_no, ccy, type, amount, created_at, entry_id) "
            f"SELECT a.uid, {provider_no}, a.ccy, 'Deposit', a.available, %(at)s, %(entry)s {stakers} "
            f"ORDER BY a.uid", entry=entry_id, **at)
        total_sql = "sum(a.available)" if pg else "decsum(a.available)"
        total = Decimal(sql(f"SELECT {total_sql} {stakers}").scalar_one())
        expected = Decimal(sum(holder_units(i) for i in range(1, n + 1))) / SAT
        assert total == expected, (total, expected)
        account_id = sql("INSERT INTO ledger_accounts (owner, uid, acct_type, ccy, allow_negative, available, "
                         "locked, updated_at) VALUES ('s:custody', NULL, %(type)s, %(ccy)s, %(neg)s, %(amount)s, "
                         "%(zero)s, %(at)s) RETURNING id", type=SYSTEM, ccy=CCY, neg=SYSTEM_ACCOUNTS["custody"],
                         amount=-total, zero=Decimal(0), **at).scalar_one()
        sql("INSERT INTO postings (entry_id, account_id, bucket, ccy, amount, created_at) "
            "VALUES (%(entry)s, %(account)s, 'available', %(ccy)s, %(amount)s, %(at)s)",
            entry=entry_id, account=account_id, ccy=CCY, amount=-total, **at)
    # PostgreSQL: statistics and visibility as autovacuum would have them by now. SQLite: nothing, the
    # application never runs ANALYZE there, so its statements must be planned well without statistics.
    if pg:
        with services.db.query() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


# -- measurements ----------------------------------------------------------------------------------


def _stakers(acct_type: int) -> str:
    return f"FROM ledger_accounts a WHERE a.acct_type = {acct_type} AND a.ccy = '{CCY}' AND a.uid IS NOT NULL"


def floor_sql(pg: bool, acct_type: int) -> str:
    """Every staker's interest, summed, nothing written. On SQLite money is text and SQLite's arithmetic on it
    is binary floating point: the figure is approximate, the cost (one scan and a multiplication per staker)
    is what the floor is for."""
    if pg:
        return (f"SELECT count(*), sum(i) FROM (SELECT trunc(a.available * %(bps)s / 3650000, {PRECISION}) AS i "
                f"{_stakers(acct_type)}) r")
    return (f"SELECT count(*), sum(i) FROM (SELECT CAST(CAST(a.available AS REAL) * :bps / 3650000 * 1e8 "
            f"AS INTEGER) / 1e8 AS i {_stakers(acct_type)}) r")


def write_floor(services: Any, provider_no: int, n: int, day: str, at: dt.datetime, rate_bps: Decimal) -> float:
    """Seconds for bare set-based SQL to write what a run writes: N ``Interest`` events, a journal entry with N
    postings, N balance updates (values copied from the balances: no arithmetic, no joins), in one transaction
    on one connection that is rolled back."""
    from stakehouse.db.dialect import driver_params, driver_sql
    from stakehouse.ledger.rules import staking_type

    stakers = _stakers(staking_type(provider_no))
    with services.db.engine.connect() as conn:
        def sql(statement: str, **params: Any) -> Any:
            return conn.exec_driver_sql(driver_sql(conn, statement), driver_params(conn, params))

        started = time.perf_counter()
        with conn.begin() as tx:
            sql(f"INSERT INTO provider_events (uid, provider_no, ccy, type, amount, created_at, price, rate_bps, "
                f"accrual_day) SELECT a.uid, {provider_no}, a.ccy, 'Interest', a.available, %(at)s, NULL, %(bps)s, "
                f"%(day)s {stakers} ORDER BY a.uid", at=at, bps=rate_bps, day=day)
            entry = sql("INSERT INTO journal_entries (type, ref, idempotency_key, created_at, memo) "
                        "VALUES ('bench', 'bench', 'bench:writes', %(at)s, '') RETURNING id", at=at).scalar_one()
            written = sql(f"INSERT INTO postings (entry_id, account_id, bucket, ccy, amount, created_at) "
                          f"SELECT %(entry)s, a.id, 'available', a.ccy, a.available, %(at)s {stakers} ORDER BY a.id",
                          entry=entry, at=at).rowcount
            updated = sql(f"UPDATE ledger_accounts SET available = available, updated_at = %(at)s "
                          f"WHERE id IN (SELECT a.id {stakers})", at=at).rowcount
            assert written == updated == n, (written, updated)
            tx.rollback()
        return time.perf_counter() - started


def expected_interest(n: int, rate_bps: Decimal) -> tuple[int, int]:
    """Sum of the interest of day D and of day D+1 in units of 1e-8, by integer arithmetic from the generated
    balances (independent of the code under test): ``floor(eligible * rate_bps / 10000 / 365)`` at 8 decimals;
    day D's interest is held from D+1's start, so it is part of D+1's eligible balance."""
    bps = int(rate_bps * SAT)
    assert Decimal(bps) / SAT == rate_bps, "a rate with at most 8 decimals (bps)"
    divisor = 10_000 * 365 * SAT
    day1 = day2 = 0
    for i in range(1, n + 1):
        units = holder_units(i)
        first = units * bps // divisor
        day1 += first
        day2 += (units + first) * bps // divisor
    return day1, day2


def verify(services: Any, product: Any, day: str, n: int, expected_units: int) -> str:
    from stakehouse.db.dialect import driver_params, driver_sql

    pg = services.db.dialect == "postgresql"
    agg = "sum" if pg else "decsum"
    with services.db.read() as conn:
        def one(statement: str, **params: Any) -> Any:
            return conn.exec_driver_sql(driver_sql(conn, statement), driver_params(conn, params)).one()

        keys = {"no": product.provider_no, "c": CCY, "d": day}
        count, total = one(f"SELECT count(*), {agg}(amount) FROM provider_events WHERE type = 'Interest' "
                           "AND provider_no = %(no)s AND ccy = %(c)s AND accrual_day = %(d)s", **keys)
        run = one("SELECT holders, total FROM provider_accrual_runs WHERE provider_no = %(no)s AND ccy = %(c)s "
                  "AND day = %(d)s", **keys)
        posted, postings_count, entries = one(
            f"SELECT {agg}(p.amount), count(*), count(DISTINCT e.id) FROM postings p JOIN journal_entries e "
            "ON e.id = p.entry_id WHERE e.type = 'provider_interest' AND e.ref = %(r)s AND p.ccy = %(c)s "
            "AND p.account_id IN (SELECT id FROM ledger_accounts WHERE uid IS NOT NULL)",
            r=f"{product.provider_id}:{CCY}:{day}", c=CCY)
    expected = Decimal(expected_units) / SAT
    problems = []
    if count != n or int(run[0]) != n or postings_count != n:
        problems.append(f"{count} events, run says {run[0]} stakers, {postings_count} postings; expected {n}")
    if Decimal(total) != expected or Decimal(run[1]) != expected or Decimal(posted) != expected:
        problems.append(f"events {total}, run {run[1]}, posted {posted}; expected {expected}")
    if problems:
        raise AssertionError(f"day {day}: " + "; ".join(problems))
    return f"{day}: {n} events, {entries} entries, total {expected}"


class HoldingsCapture:
    """Keeps the statements (and their parameters) of ``_holdings``'s read of the day's moves as they are sent
    (a SQLAlchemy ``before_cursor_execute`` listener: a string test per statement, nothing else)."""

    #: The statement's mark on SQLite (a join) and on PostgreSQL (account by account).
    MARKS = ("FROM postings JOIN ledger_accounts", "JOIN LATERAL (SELECT postings.entry_id")

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def _hear(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if any(mark in statement for mark in self.MARKS) and isinstance(parameters, dict):
            self.seen.append((statement, dict(parameters)))

    def __enter__(self) -> HoldingsCapture:
        from sqlalchemy import event
        event.listen(self.engine, "before_cursor_execute", self._hear)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event
        event.remove(self.engine, "before_cursor_execute", self._hear)


def explain_chunk(services: Any, captured: list[tuple[str, dict[str, Any]]], old_start: dt.datetime,
                  new_start: dt.datetime) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of one chunk's read (a middle chunk: bounded on both sides), its day start
    moved from ``old_start`` to ``new_start``; in a transaction that is rolled back."""
    if not captured:
        return "no statement captured"
    bounded = [c for c in captured if c[0].count(".uid >=") and c[0].count(".uid <")] or captured
    statement, params = bounded[len(bounded) // 2]
    moved = {k for k, v in params.items() if isinstance(v, dt.datetime) and v == old_start}
    assert moved, f"no parameter is the day's start {old_start}: {params}"
    params = {k: new_start if k in moved else v for k, v in params.items()}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    with services.db.engine.connect() as conn, conn.begin() as tx:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).scalars().all()
        tx.rollback()
    return f"{statement}\n-- {shown}\n" + "\n".join(rows)


def run_case(backend: str, n: int, args: argparse.Namespace) -> Case:
    from stakehouse.db.dialect import driver_params, driver_sql
    from stakehouse.ledger.rules import staking_type
    from stakehouse.staking.provider.service import INTEREST_JOB

    case = Case(backend, n)
    rate_bps = Decimal(args.rate_bps)
    ctx = sqlite_backend() if backend == "sqlite" else postgres_backend(args.pg_url)
    with ctx as url:
        services = open_services(url, args)
        try:
            pg = services.db.dialect == "postgresql"
            ps = services.provider_staking
            provider = ps.create_provider("bench provider")
            product = ps.set_product(provider.provider_id, CCY, {"precision": PRECISION})
            calendar = services.accrual_calendar
            day1 = calendar.day(services.clock.now()) - dt.timedelta(days=3)
            day2 = day1 + dt.timedelta(days=1)
            p1, p2 = calendar.period_of_day(day1), calendar.period_of_day(day2)
            p3 = calendar.period_of_day(day2 + dt.timedelta(days=1))
            ps.publish_rate(provider.provider_id, CCY, day1, rate_bps)  # carried forward to D+1

            started = time.perf_counter()
            bulk_load(services, product.provider_no, n, p1.start - dt.timedelta(days=1))
            case.load_s = time.perf_counter() - started
            interest1, interest2 = expected_interest(n, rate_bps)

            acct_type = staking_type(product.provider_no)
            floors = []
            with services.db.read() as conn:
                for _ in range(args.floor_repeat):
                    started = time.perf_counter()
                    count, _total = conn.exec_driver_sql(driver_sql(conn, floor_sql(pg, acct_type)),
                                                         driver_params(conn, {"bps": rate_bps})).one()
                    floors.append(time.perf_counter() - started)
                    assert count == n, count
            case.floor_s = min(floors)

            job = next(j for j in services.jobs.jobs if j.name == INTEREST_JOB)
            runs = []
            capture = HoldingsCapture(services.db.engine)
            for period, expected in ((p1, interest1), (p2, interest2)):
                listen = capture if args.explain and pg and period is p2 else contextlib.nullcontext()
                with PeakMemory(args.tracemalloc) as mem, listen:
                    started = time.perf_counter()
                    record = services.runner.run_one(job, period)
                    seconds = time.perf_counter() - started
                assert record is not None, "the period had already run"
                runs.append(Run(seconds, mem.rss_mb, mem.traced_mb, record.result))
                case.verified += ("; " if case.verified else "") + verify(services, product, period.key, n, expected)
            case.day1, case.day2 = runs
            if args.explain and pg:  # D+2 before its run is D+1 before its run, one day further
                case.explain = explain_chunk(services, capture.seen, p2.start, p3.start)
            if args.audit:
                timed_audit(services, case)
            if args.write_floor:  # last: what it leaves behind (dead rows) must not slow the runs
                case.writes_s = write_floor(services, product.provider_no, n, p3.key, p3.end, rate_bps)
        finally:
            services.close()
    return case


# -- driver ----------------------------------------------------------------------------------------


def fmt_table(cases: list[Case]) -> str:
    head = (f"{'backend':<9} {'stakers':>9} {'load s':>7} {'floor s':>8} {'writes s':>9} {'day 1 s':>8} "
            f"{'day 2 s':>8} {'us/staker d1/d2':>16} {'run/writes':>11} {'peak MB d1/d2':>14}")
    lines = [head, "-" * len(head)]
    for c in cases:
        if c.error or c.day1 is None or c.day2 is None:
            lines.append(f"{c.backend:<9} {c.holders:>9} failed: {c.error}")
            continue
        d1, d2 = c.day1.seconds, c.day2.seconds
        per = f"{d1 / c.holders * 1e6:.1f}/{d2 / c.holders * 1e6:.1f}"
        writes, wratio, mem = shared_cells(c)
        traced = "  (traced: times inflated)" if c.day1.traced_mb is not None else ""
        lines.append(f"{c.backend:<9} {c.holders:>9} {c.load_s:>7.1f} {c.floor_s:>8.3f} {writes:>9} {d1:>8.2f} "
                     f"{d2:>8.2f} {per:>16} {wratio:>11} {mem:>14}{traced}")
    return "\n".join(lines + growth(cases, "stakers", writes=True))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    common_arguments(p, "stakers")
    p.add_argument("--rate-bps", default="400", help="published rate in basis points a year (default 400)")
    p.add_argument("--explain", action="store_true",
                   help="PostgreSQL: print EXPLAIN (ANALYZE, BUFFERS) of one chunk's read of the day's moves")
    args = p.parse_args()
    if args.case:
        return child(args.case, args, run_case)
    sizes, backends = sizes_and_backends(p, args)
    print(f"cpus={os.cpu_count()} rate_bps={args.rate_bps} stakers={sizes} backends={backends} "
          f"connections={args.connections} chunk_size={args.chunk_size}", flush=True)
    cases = run_cases(__file__, args, sizes, backends, ["--rate-bps", args.rate_bps] + ["--explain"] * args.explain)
    print()
    print(fmt_table(cases))
    for c in cases:
        if c.explain:
            print(f"\nEXPLAIN (ANALYZE, BUFFERS), {c.backend} {c.holders} stakers, one chunk of day D+1's read "
                  f"(re-run for D+2):\n{c.explain}")
    return 0 if all(not c.error for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
