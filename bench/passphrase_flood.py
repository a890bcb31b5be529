#!/usr/bin/env python3
"""Benchmark: does a flood of wrong passphrases slow other users down?

One ``stakehouse serve --workers 1`` process (production mode, SQLite or PostgreSQL). A victim reads
its balances one request after the other and records each latency; meanwhile ``--attackers``
clients send signed requests with a valid API key and a wrong passphrase, ``--rate`` a second in
all. The victim's median and 95th percentile are compared with a quiet period of the same length,
in the same run. A wrong passphrase costs a slow hash (scrypt, tens of milliseconds of CPU).

Two rounds:
- ``limited``: the server's real limits (``STAKEHOUSE_RATE_LIMIT_FACTOR=1``): after 5 wrong
  passphrases a minute per key and 20 per IP the slow check is skipped (50011);
- ``unlimited``: every limit lifted (factor 100000), so every wrong passphrase is hashed: this
  shows what running the hash off the event loop alone buys.

Usage (project root)::

    .venv/bin/python bench/passphrase_flood.py [--seconds 10] [--attackers 4] [--rate 21] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import balances as common  # the server and signing helpers of bench/balances.py

#: The victim's pace: a request every 50 ms.
VICTIM_INTERVAL = 0.05


def get(base: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def victim(base: str, users: list[dict[str, str]], seconds: float) -> list[float]:
    """Latencies (ms) of signed balance reads, 20 a second spread over ``users`` (4 a second each:
    under the route's own limit of 6), for ``seconds``."""
    out: list[float] = []
    end = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < end:
        creds = users[turn % len(users)]
        turn += 1
        headers = common.okx_headers(creds, "GET", common.BALANCES)
        started = time.perf_counter()
        status, body = get(base, common.BALANCES, headers)
        elapsed = time.perf_counter() - started
        out.append(elapsed * 1000)
        assert status == 200 and b'"code":"0"' in body, body
        time.sleep(max(0.0, VICTIM_INTERVAL - elapsed))
    return out


def attacker(base: str, creds: dict[str, str], interval: float, stop: threading.Event, codes: dict[str, int]) -> None:
    wrong = {**creds, "passphrase": "Wrong-Passphrase-1"}
    while not stop.is_set():
        started = time.monotonic()
        _status, body = get(base, common.BALANCES, common.okx_headers(wrong, "GET", common.BALANCES))
        code = body.split(b'"code":"', 1)[1].split(b'"', 1)[0].decode() if b'"code":"' in body else "?"
        codes[code] = codes.get(code, 0) + 1
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def round_(backend_url: str, factor: str, args: argparse.Namespace) -> str:
    with common.server(backend_url, common.free_port(), rate_limit_factor=factor) as (base, _proc):
        victims = [common.setup_user(base) for _ in range(5)]
        attackers = [common.setup_user(base) for _ in range(args.attackers)]
        victim(base, victims, 1.0)  # warm-up
        quiet = victim(base, victims, args.seconds)
        stop = threading.Event()
        codes: dict[str, int] = {}
        interval = args.attackers / args.rate
        threads = [threading.Thread(target=attacker, args=(base, a, interval, stop, codes)) for a in attackers]
        for t in threads:
            t.start()
        time.sleep(0.5)
        flooded = victim(base, victims, args.seconds)
        stop.set()
        for t in threads:
            t.join()

    def p(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1]

    return (f"{factor:>8}  {statistics.median(quiet):8.2f} {p(quiet, 95):8.2f}   {statistics.median(flooded):8.2f} "
            f"{p(flooded, 95):8.2f}   {len(quiet):6d} {len(flooded):6d}   "
            + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--attackers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=21.0, help="wrong-passphrase requests a second, all attackers")
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    backend = common.sqlite_backend() if args.backend == "sqlite" else common.postgres_backend(args.pg_url)
    print(f"backend={args.backend} attackers={args.attackers} rate={args.rate}/s seconds={args.seconds}")
    print("  factor  quiet p50   p95      flooded p50  p95      quiet  flood   attacker replies (code: count)")
    for factor in ("1", "100000"):
        with backend as url:
            print(round_(url, factor, args), flush=True)
        backend = common.sqlite_backend() if args.backend == "sqlite" else common.postgres_backend(args.pg_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
