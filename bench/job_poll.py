#!/usr/bin/env python3
"""Benchmark: one job poll (``JobRunner.due`` over the last poll's window, what ``run_due`` reads
every ``job_poll_seconds``) as the ``job_runs`` history grows, with and without the
``ix_job_runs_due_at`` index (dropped for the comparison), on PostgreSQL.

Usage (from the project root)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/job_poll.py [--rows 10000,100000,1000000] [--polls 50]

Goal (issue 19, scope 2): a poll's cost stays flat as the history grows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from sqlalchemy import text

import balances as b
from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services


def poll_ms(services: Services, polls: int) -> float:
    now = services.clock.now()
    times = []
    for _ in range(polls):
        started = time.perf_counter()
        services.runner.due(now, after=now - dt.timedelta(seconds=5))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rows", default="10000,100000,1000000")
    p.add_argument("--polls", type=int, default=50)
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""))
    args = p.parse_args()
    if not args.pg_url:
        p.error("a PostgreSQL is needed: --pg-url or STAKEHOUSE_TEST_PG_URL")
    print(f"{'history rows':>12} {'poll ms (index)':>16} {'poll ms (no index)':>19}")
    for rows in (int(x) for x in args.rows.split(",")):
        with b.postgres_backend(args.pg_url) as url:
            services = Services(Settings(database_url=url, server_key=new_server_key(), sandbox=False))
            with services.db.write() as conn:  # a history of hourly runs of one old job, ending an hour ago
                conn.execute(text(
                    "INSERT INTO job_runs (job, period, due_at, finished_at, result) "
                    "SELECT 'history', 'p' || g, now() - (g + 1) * interval '1 hour', now(), 'ok' "
                    "FROM generate_series(1, :n) AS g"), {"n": rows})
                conn.execute(text("ANALYZE job_runs"))
            with_index = poll_ms(services, args.polls)
            with services.db.write() as conn:
                conn.execute(text("DROP INDEX ix_job_runs_due_at"))
                conn.execute(text("ANALYZE job_runs"))
            without = poll_ms(services, args.polls)
            services.close()
        print(f"{rows:>12} {with_index:>16.2f} {without:>19.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
