#!/usr/bin/env python3
"""Benchmark (issue 15): the ND daily rebate run versus the bare set-based statement behind it.

For each backend (SQLite file, PostgreSQL database) and each number of fills, the script builds a fresh
database through ``Services`` (migrated and seeded as in production), creates one ND broker (level 1) and
``--subs`` sub-accounts, and bulk-loads ``--fills`` filled market orders of those sub-accounts, all in one HKT
day D (an order and a fill each, every NOT NULL column filled with plausible values, fees valued in USDT with up to
18 decimals; 30 % of the fills without markup, 3 % with a discount, i.e. a negative markup). Then, in the same
run and on the same database, interleaved ``--repeat`` times (the median counts):

* **select**: the bare set-based statement, ``runs.nd_day_select`` executed and all its rows fetched: every
  sub-account's day (sum of the fills' rebates before caps, of netFee and markupFee), nothing written;
* **writes**: the rows a run writes, written bare: one ``nd_rebate_records`` row per sub-account (values taken
  from the select's rows beforehand) in batches of ``runs.INSERT_BATCH``, as the run writes them; rolled back;
* **run**: ``runs.nd_rebate_run`` for day D in one transaction (the ledger barrier taken exclusively, as the
  job runner does for ``nd_rebates``), rolled back so that it can be repeated.

Goal: run <= 3 x (select + writes) with 1 000 000 fills of 10 000 sub-accounts, on both databases, memory
flat (the run's peak memory does not grow with the fills: compare the ``--small-fills`` case with the full one).

Usage (from the project root)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/rebates.py [--fills 1000000] [--small-fills 100000] [--subs 10000]
          [--db sqlite|postgres|both] [--pg-url URL] [--repeat 3] [--profile]

Each (backend, fills) case runs in a child process of its own, so its memory figures are its own. Memory is
the growth of the process's peak RSS during the first timed run (``/proc/self/clear_refs`` resets the peak; the
SQLite page cache is in it, the PostgreSQL server is not) and the peak of Python allocations
(``tracemalloc``) during one more, untimed run.

Checks, in every repetition of the run: ``--subs`` records for day D, the sum of their income equal to the sum
of ``raw`` of the bare statement (no caps, no VIP mode configured) and to an independent computation in this
script from the generated fees (per fill ``trunc(0.4 * netFee + markupFee, 8)``, summed).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from balances import postgres_backend, sqlite_backend  # bench/ is on the path: these scripts run from it
from reward_run import PeakMemory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

UID_BASE = 10**15 + 5 * 10**14  # sub-account uids: 16-digit strings like the service's
RATIO = Decimal("0.4")  # level 1 has no row in nd_rebate_ratios: the default ratio
GOAL = 3.0  # run <= GOAL x (select + writes)
CHUNK = 20_000  # rows per executemany / COPY flush while loading
EIGHT = Decimal("1e-8")

ORDER_COLUMNS = ("ord_id", "uid", "inst_id", "cl_ord_id", "tag", "side", "ord_type", "td_mode", "tgt_ccy", "px",
                 "sz", "state", "lock_ccy", "locked", "acc_fill_sz", "avg_px", "fee", "fee_ccy", "auth", "api_key",
                 "created_at", "updated_at")
FILL_COLUMNS = ("trade_id", "ord_id", "uid", "broker_uid", "inst_id", "side", "tag", "exec_type", "fill_px",
                "fill_sz", "quote_amt", "idx_px", "fee_ccy", "fee_rate", "base_rate", "fee", "base_fee",
                "markup_fee", "credit_fee", "amt_usdt", "fee_usdt", "net_fee_usdt", "markup_usdt", "entry_id", "ts")


# -- data ------------------------------------------------------------------------------------------


def plain(value: Decimal) -> str:
    """Canonical decimal text (SQLite's money storage; PostgreSQL parses it as NUMERIC)."""
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class Expected:
    """What the generated fills must give, computed here from the fees (independent of the code under test)."""

    fills: int = 0
    raw: Decimal = Decimal(0)
    net_fee: Decimal = Decimal(0)
    markup: Decimal = Decimal(0)
    subs: set[int] = field(default_factory=set)


def generate(n: int, subs: int, period: Any, broker: str, entry_id: int, sqlite: bool,
             expected: Expected) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(order row, fill row) for fill ``i`` of ``n``, in ``ORDER_COLUMNS``/``FILL_COLUMNS`` order, with ids
    ``i + 1``. BTC-USDT market orders at about 60 000: buys pay their fee in BTC (valued at an index price with
    8 decimals: fees in USDT with up to 18 decimals), sells in USDT. Sub-account ``i`` has the ``i``-th fill
    (each has at least one); the others go to sub-accounts drawn with a skew (a few trade a lot)."""
    rng = random.Random(15)
    start = period.start
    span = int((period.end - start).total_seconds() * 1_000_000)
    zero = "0"
    for i in range(n):
        sub = i if i < subs else int(subs * rng.random() ** 2)
        uid = str(UID_BASE + sub)
        ts = start + dt.timedelta(microseconds=i * span // n)
        at: Any = ts.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") \
            if sqlite else ts
        px = Decimal(rng.randrange(580_000, 620_000)).scaleb(-1)
        sz = Decimal(rng.randrange(100, 500_000)).scaleb(-6)
        quote = px * sz
        kind = rng.random()
        base_rate = Decimal("0.001")
        fee_rate = Decimal("0.001") if kind < 0.30 else Decimal("0.0008") if kind < 0.33 else Decimal("0.0012")
        buy = rng.random() < 0.5
        if buy:  # fee in BTC, valued at the index price
            idx = px + Decimal(rng.randrange(-10**9, 10**9)).scaleb(-8)
            fee, base_fee = sz * fee_rate, sz * base_rate
            fee_ccy, to_usdt = "BTC", idx
        else:  # fee in USDT
            idx = Decimal(1)
            fee, base_fee = quote * fee_rate, quote * base_rate
            fee_ccy, to_usdt = "USDT", Decimal(1)
        markup_fee = fee - base_fee
        fee_usdt, net_fee_usdt, markup_usdt = fee * to_usdt, base_fee * to_usdt, markup_fee * to_usdt
        expected.fills += 1
        expected.raw += (RATIO * net_fee_usdt + markup_usdt).quantize(EIGHT, rounding=ROUND_DOWN)
        expected.net_fee += net_fee_usdt
        expected.markup += markup_usdt
        expected.subs.add(sub)
        side = "buy" if buy else "sell"
        order = (i + 1, uid, "BTC-USDT", "", "", side, "market", "cash", "base_ccy", None, plain(sz), "filled",
                 "USDT" if buy else "BTC", zero, plain(sz), plain(px), plain(fee), fee_ccy, "api",
                 "bench-key", at, at)
        fill = (i + 1, i + 1, uid, broker, "BTC-USDT", side, "", "T", plain(px), plain(sz), plain(quote),
                plain(idx), fee_ccy, plain(fee_rate), plain(base_rate), plain(fee), plain(base_fee),
                plain(markup_fee), zero, plain(quote), plain(fee_usdt), plain(net_fee_usdt), plain(markup_usdt),
                entry_id, at)
        yield order, fill


def bulk_load(services: Any, n: int, subs: int, period: Any, expected: Expected) -> str:
    """The broker, its sub-accounts, and ``n`` orders and fills in ``period``; returns the broker's uid."""
    from stakehouse.db.tables import journal_entries

    broker = services.accounts.create_user(kyc_level=2).uid
    services.broker.set_broker(broker, level=1)
    pg = services.db.dialect == "postgresql"
    with services.db.write() as conn:
        raw = conn.connection.driver_connection
        now = services.clock.now()
        entry = conn.execute(journal_entries.insert().values(
            type="bench_fills", ref="bench", idempotency_key="bench:fills", uid=None, created_at=period.start,
            memo=f"the fees of {n} fills").returning(journal_entries.c.id)).scalar_one()
        created: Any = now if pg else now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(
            sep=" ", timespec="microseconds")
        users = [(str(UID_BASE + s), "live", broker, broker, 1, f"nd{s:08d}", "", 0, False, "", True, created)
                 for s in range(subs)]
        user_cols = ("uid", "env", "master_uid", "parent_uid", "level", "sub_name", "label", "kyc_level", "frozen",
                     "frozen_funcs", "can_trans_out", "created_at")
        chunk: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []

        def chunks() -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
            for row in generate(n, subs, period, broker, entry, not pg, expected):
                chunk.append(row)
                if len(chunk) == CHUNK:
                    yield [o for o, _ in chunk], [f for _, f in chunk]
                    chunk.clear()
            if chunk:
                yield [o for o, _ in chunk], [f for _, f in chunk]

        if pg:
            with raw.cursor() as cur:
                with cur.copy(f"COPY users ({', '.join(user_cols)}) FROM STDIN") as cp:
                    for u in users:
                        cp.write_row(u)
                for o, f in chunks():  # a COPY of orders, then of their fills (the foreign key), per chunk
                    for table, cols, chunk_rows in (("orders", ORDER_COLUMNS, o), ("fills", FILL_COLUMNS, f)):
                        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                            for r in chunk_rows:
                                cp.write_row(r)
                for table, column in (("orders", "ord_id"), ("fills", "trade_id")):
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), {n})")
        else:
            def marks(cols: tuple[str, ...]) -> str:
                return ", ".join("?" * len(cols))

            raw.executemany(f"INSERT INTO users ({', '.join(user_cols)}) VALUES ({marks(user_cols)})", users)
            for o, f in chunks():
                raw.executemany(f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ({marks(ORDER_COLUMNS)})",
                                o)
                raw.executemany(f"INSERT INTO fills ({', '.join(FILL_COLUMNS)}) VALUES ({marks(FILL_COLUMNS)})", f)
    if pg:  # statistics and visibility as autovacuum would have them; SQLite: none, as the application
        with services.db.query() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return broker


# -- measurements ----------------------------------------------------------------------------------


@dataclass
class Case:
    backend: str
    fills: int
    subs: int
    load_s: float = 0.0
    select_s: list[float] = field(default_factory=list)
    writes_s: list[float] = field(default_factory=list)
    run_s: list[float] = field(default_factory=list)
    run_rss_mb: float = 0.0
    run_traced_mb: float = 0.0
    select_rss_mb: float = 0.0
    result: str = ""
    verified: str = ""
    profile: str = ""
    error: str = ""

    def med(self, what: str) -> float:
        values: list[float] = getattr(self, what)
        return statistics.median(values) if values else 0.0


@contextlib.contextmanager
def transaction(services: Any) -> Iterator[Any]:
    """A connection in a transaction that is always rolled back; PostgreSQL: the ledger barrier taken
    exclusively first, as ``Database.write(exclusive=True)`` does for the ``nd_rebates`` job."""
    from stakehouse.db.engine import LEDGER_BARRIER

    with services.db.engine.connect() as conn:
        tx = conn.begin()
        try:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LEDGER_BARRIER})")
            yield conn
        finally:
            tx.rollback()


def time_select(services: Any, period: Any) -> tuple[float, list[Any]]:
    """The bare statement, executed and fetched (rows as SQLAlchemy gives them: Decimals, as the run gets them)."""
    from stakehouse.rebates.runs import nd_day_select

    with services.db.read() as conn:
        started = time.perf_counter()
        rows = conn.execute(nd_day_select(conn, period.start, period.end)).all()
        return time.perf_counter() - started, rows


def time_writes(services: Any, records: list[dict[str, Any]]) -> float:
    """The run's record rows, prepared beforehand, inserted as the run inserts them; rolled back."""
    from stakehouse.db.tables import nd_rebate_records
    from stakehouse.rebates.runs import INSERT_BATCH

    with transaction(services) as conn:
        started = time.perf_counter()
        for i in range(0, len(records), INSERT_BATCH):
            conn.execute(nd_rebate_records.insert(), records[i:i + INSERT_BATCH])
        return time.perf_counter() - started


def check_run(conn: Any, period: Any, subs: int, raw_sum: Decimal, expected: Expected) -> str:
    from sqlalchemy import func, select

    from stakehouse.db.tables import nd_rebate_records
    from stakehouse.ledger.audit import money_sum

    c = nd_rebate_records.c
    key = period.key.replace("-", "")
    count, income = conn.execute(select(func.count(), money_sum(c.income)).where(c.day == key)).one()
    if count != subs or Decimal(income) != raw_sum or raw_sum != expected.raw:
        raise AssertionError(f"{count} records (expected {subs}), income {income}, bare raw {raw_sum}, "
                             f"expected raw {expected.raw}")
    return f"{count} records, income {Decimal(income)} = bare raw = expected"


def run_once(services: Any, period: Any, subs: int, raw_sum: Decimal, expected: Expected,
             memory: PeakMemory | None = None, profile: cProfile.Profile | None = None) -> tuple[float, str, str]:
    """``nd_rebate_run`` of the day in a transaction that is rolled back; checked before the rollback."""
    from stakehouse.ledger.journal import Ledger
    from stakehouse.rebates.runs import describe, nd_rebate_run

    with transaction(services) as conn:
        with memory if memory is not None else contextlib.nullcontext():
            if profile is not None:
                profile.enable()
            started = time.perf_counter()
            result = describe(nd_rebate_run(conn, period, ledger=Ledger()))
            seconds = time.perf_counter() - started
            if profile is not None:
                profile.disable()
        return seconds, result, check_run(conn, period, subs, raw_sum, expected)


def run_case(backend: str, n: int, subs: int, args: argparse.Namespace) -> Case:
    from stakehouse.config import Settings
    from stakehouse.jobs.schedule import Daily
    from stakehouse.security import new_server_key
    from stakehouse.wiring import Services

    case = Case(backend, n, subs)
    ctx = sqlite_backend() if backend == "sqlite" else postgres_backend(args.pg_url)
    with ctx as url:
        services = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(),
                                     admin_token="bench-" + secrets.token_hex(8), log_level="WARNING"))
        try:
            today = Daily("Asia/Hong_Kong").day(services.clock.now())
            period = Daily("Asia/Hong_Kong").period_of_day(today - dt.timedelta(days=2))
            expected = Expected()
            started = time.perf_counter()
            broker = bulk_load(services, n, subs, period, expected)
            case.load_s = time.perf_counter() - started
            assert expected.fills == n and len(expected.subs) == subs, (expected.fills, len(expected.subs))

            with PeakMemory(False) as mem:  # warm-up (caches), and the select's own memory
                _, rows = time_select(services, period)
            case.select_rss_mb = mem.rss_mb
            assert len(rows) == subs, len(rows)
            raw_sum = sum((r.raw for r in rows), Decimal(0))
            assert raw_sum == expected.raw, (raw_sum, expected.raw)
            assert sum((r.net_fee for r in rows), Decimal(0)) == expected.net_fee
            assert sum((r.markup for r in rows), Decimal(0)) == expected.markup
            key = period.key.replace("-", "")
            rebate_date = (dt.date.fromisoformat(period.key) + dt.timedelta(days=1)).strftime("%Y%m%d")
            records = [dict(broker_uid=r.broker_uid, uid=r.uid, day=key, rebate_date=rebate_date,
                            rebate_time=period.end, income=max(r.raw, Decimal(0)), net_fee=r.net_fee,
                            markup_fee=r.markup, ratio=r.ratio, entry_id=None) for r in rows]
            assert {r.broker_uid for r in rows} == {broker}
            del rows

            for rep in range(args.repeat):
                seconds, _ = time_select(services, period)
                case.select_s.append(seconds)
                case.writes_s.append(time_writes(services, records))
                memory = PeakMemory(False) if rep == 0 else None
                seconds, case.result, case.verified = run_once(services, period, subs, raw_sum, expected, memory)
                case.run_s.append(seconds)
                if memory is not None:
                    case.run_rss_mb = memory.rss_mb
            traced = PeakMemory(True)  # one more run, untimed (tracing slows it)
            run_once(services, period, subs, raw_sum, expected, traced)
            case.run_traced_mb = traced.traced_mb or 0.0
            if args.profile:
                prof = cProfile.Profile()
                run_once(services, period, subs, raw_sum, expected, profile=prof)
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
                case.profile = out.getvalue()
        finally:
            services.close()
    return case


# -- driver ----------------------------------------------------------------------------------------


def child(spec: str, args: argparse.Namespace) -> int:
    backend, n, subs = spec.split(":")
    try:
        case = run_case(backend, int(n), int(subs), args)
    except Exception as exc:  # reported by the parent
        import traceback

        traceback.print_exc()
        case = Case(backend, int(n), int(subs),
                    error=f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300])
    print("RESULT " + json.dumps(asdict(case)), flush=True)
    return 0


def fmt_table(cases: list[Case], full: int) -> str:
    head = (f"{'backend':<9} {'fills':>8} {'subs':>6} {'load s':>7} {'select s':>9} {'writes s':>9} {'run s':>7} "
            f"{'run/(sel+wr)':>13} {'run/select':>11} {'run RSS MB':>11} {'run py MB':>10}  goal")
    lines = [head, "-" * len(head)]
    for c in cases:
        if c.error:
            lines.append(f"{c.backend:<9} {c.fills:>8} {c.subs:>6} failed: {c.error}")
            continue
        sel, wr, run = c.med("select_s"), c.med("writes_s"), c.med("run_s")
        ratio = run / (sel + wr)
        goal = ""
        if c.fills == full:
            goal = f"<= {GOAL:g}x: {'PASS' if ratio <= GOAL else 'FAIL'}"
        lines.append(f"{c.backend:<9} {c.fills:>8} {c.subs:>6} {c.load_s:>7.1f} {sel:>9.3f} {wr:>9.3f} {run:>7.3f} "
                     f"{ratio:>13.2f} {run / sel:>11.2f} {c.run_rss_mb:>11.1f} {c.run_traced_mb:>10.1f}  {goal}")
    for backend in dict.fromkeys(c.backend for c in cases):
        done = sorted((c for c in cases if c.backend == backend and not c.error), key=lambda c: c.fills)
        if len(done) >= 2:
            lo, hi = done[0], done[-1]
            sel, run = hi.med("select_s") / lo.med("select_s"), hi.med("run_s") / lo.med("run_s")
            lines.append(f"{backend}: x{hi.fills / lo.fills:g} fills -> select x{sel:.1f}, run x{run:.1f}, "
                         f"run RSS {lo.run_rss_mb:.1f} -> "
                         f"{hi.run_rss_mb:.1f} MB, run Python peak {lo.run_traced_mb:.1f} -> {hi.run_traced_mb:.1f} MB")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--fills", type=int, default=1_000_000, help="fills in day D (default 1000000)")
    p.add_argument("--small-fills", type=int, default=None,
                   help="a smaller case for the memory comparison (default fills / 10; 0: none)")
    p.add_argument("--subs", type=int, default=10_000, help="sub-accounts of the broker (default 10000)")
    p.add_argument("--db", default="both", choices=("sqlite", "postgres", "both"))
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""),
                   help="PostgreSQL URL of an existing database to create the bench database from "
                        "(default: $STAKEHOUSE_TEST_PG_URL)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions of each, the median counts (default 3)")
    p.add_argument("--profile", action="store_true", help="profile one more run (cProfile, cumulative top 30)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: this process runs one backend:fills:subs case
    args = p.parse_args()
    if args.case:
        return child(args.case, args)

    if args.fills < args.subs:
        p.error("--fills must be at least --subs (every sub-account trades)")
    small = args.fills // 10 if args.small_fills is None else args.small_fills
    sizes = ([small] if small and small != args.fills and small >= args.subs else []) + [args.fills]
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in backends and not args.pg_url:
        print("postgres: skipped (no --pg-url and STAKEHOUSE_TEST_PG_URL is not set)", flush=True)
        backends.remove("postgres")
    print(f"cpus={os.cpu_count()} subs={args.subs} fills={sizes} backends={backends} repeat={args.repeat}",
          flush=True)
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"warning: 1-minute load average is {load1:.2f} before starting; timings will be noisy", flush=True)
    cases: list[Case] = []
    for backend in backends:
        for n in sizes:
            print(f"{backend} {n} fills: running ...", flush=True)
            cmd = [sys.executable, __file__, "--case", f"{backend}:{n}:{args.subs}", "--pg-url", args.pg_url,
                   "--repeat", str(args.repeat)] + ["--profile"] * args.profile
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                case = Case(backend, n, args.subs, error=(out.stderr.strip().splitlines() or ["no result"])[-1][:300])
            else:
                case = Case(**json.loads(line[len("RESULT "):]))
            if case.error:
                print(f"  failed: {case.error}\n{out.stderr[-3000:]}", flush=True)
            else:
                print(f"  load {case.load_s:.1f}s; select {' '.join(f'{s:.3f}' for s in case.select_s)}; writes "
                      f"{' '.join(f'{s:.3f}' for s in case.writes_s)}; run {' '.join(f'{s:.3f}' for s in case.run_s)}"
                      f"\n  {case.result}; verified: {case.verified}", flush=True)
                if case.profile:
                    print(case.profile, flush=True)
            cases.append(case)
    print()
    print(fmt_table(cases, args.fills))
    ok = all(not c.error for c in cases) and all(
        c.med("run_s") <= GOAL * (c.med("select_s") + c.med("writes_s")) for c in cases if c.fills == args.fills)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
