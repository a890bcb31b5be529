"""The deterministic simulation's long mode (issue 19, scope 6): any number of seeds, in worker processes.

Each seed runs ``tests.sim.world.run_seed`` on a SQLite file of its own, or with ``--backend postgres`` on a
PostgreSQL database of its own (created on the server of ``--pg-url``, dropped after; see ``tests/sim/world.py``):
seeded operations from every modelled product, restarts and crashes inside runs, checked after every
step against the audit and the independent model. Failing seeds are printed with the command that
reproduces one; the exit status is 1 if any seed failed.

    .venv/bin/python bench/simulate.py --seeds 10000 --days 30 --jobs 2 [--first 0]
    .venv/bin/python bench/simulate.py --seed 1234            # one seed, its whole failure report
    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \
      .venv/bin/python bench/simulate.py --backend postgres --seeds 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.sim, from the project root

from tests.sim.world import SimulationFailure, quiet_logs, run_seed
from tests.support.external import create_database, drop_database


def one(seed: int, days: int, full_check_every: int, pg_url: str) -> tuple[int, float, int, str]:
    """(seed, CPU seconds, steps, failure text or ""). ``pg_url``: on a database of that server."""
    quiet_logs()
    started = time.process_time()
    name = f"sim_{seed}_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="sim-") as directory:
        try:
            url = create_database(pg_url, name) if pg_url else ""
            stats = run_seed(seed, Path(directory), url=url, days=days, full_check_every=full_check_every)
        except SimulationFailure as exc:
            return seed, time.process_time() - started, 0, str(exc)
        except Exception as exc:
            return seed, time.process_time() - started, 0, f"seed {seed}: {type(exc).__name__}: {exc}"
        finally:
            if pg_url:
                drop_database(pg_url, name)
    return seed, time.process_time() - started, stats.steps, ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=200, help="how many seeds (default 200)")
    ap.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    ap.add_argument("--seed", type=int, help="run this one seed only and print its whole report")
    ap.add_argument("--days", type=int, default=30, help="simulated days per seed (default 30)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--full-check-every", type=int, default=10,
                    help="check every user and every reward row after each N-th operation (default 10; "
                         "the audit runs after every step, all users after every clock move)")
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""),
                    help="a PostgreSQL server for --backend postgres (default $STAKEHOUSE_TEST_PG_URL)")
    args = ap.parse_args()
    if args.backend == "postgres" and not args.pg_url:
        ap.error("--backend postgres needs --pg-url or STAKEHOUSE_TEST_PG_URL")
    pg_url = args.pg_url if args.backend == "postgres" else ""
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.monotonic()
    failures: list[tuple[int, str]] = []
    cpu = 0.0
    steps = 0
    done = 0
    with ProcessPoolExecutor(max(1, min(args.jobs, len(seeds)))) as pool:
        for seed, seconds, n, failure in pool.map(one, seeds, [args.days] * len(seeds),
                                                  [args.full_check_every] * len(seeds), [pg_url] * len(seeds)):
            done += 1
            cpu += seconds
            steps += n
            if failure:
                failures.append((seed, failure))
                print(f"FAIL seed {seed}\n{failure}\n", flush=True)
            if done % 25 == 0 or done == len(seeds):
                wall = time.monotonic() - started
                print(f"{done}/{len(seeds)} seeds, {len(failures)} failed, {wall:.0f} s wall, "
                      f"{cpu / done:.2f} s CPU per seed", flush=True)
    wall = time.monotonic() - started
    print(f"seeds {len(seeds)} x {args.days} days ({args.backend}): {steps} steps, {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({len(seeds) * args.days / cpu:.1f} seed-days per CPU second, "
          f"{len(seeds) * args.days / wall:.1f} per wall second), violations: {len(failures)}")
    if failures:
        print("failing seeds: " + " ".join(str(s) for s, _ in failures))
        print(f"reproduce one: .venv/bin/python bench/simulate.py --seed {failures[0][0]} --days {args.days} "
              f"--backend {args.backend}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
