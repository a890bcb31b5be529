#!/usr/bin/env python3
"""Load test: a realistic mix of signed OKX requests from many users against
``stakehouse serve --workers N`` on PostgreSQL with Redis (shared rate limits), for N = 1, 2, 4.

The mix, by share of the client's connections (each endpoint is its own ``wrk`` process, so each
reports its own throughput and latency percentiles; all run at the same time):

    balance reads   GET  /api/v5/asset/balances                        5/16
    account reads   GET  /api/v5/account/balance                       2/16
    transfers       POST /api/v5/asset/transfer (1 USDT funding->trading) 2/16
    staking         POST /api/v5/finance/staking-defi/eth/purchase (0.01 ETH) 1/16
    orders          POST /api/v5/trade/order (0.0001 BTC market, buy/sell alternating) 3/16
    history pages   GET  /api/v5/trade/orders-history?instType=SPOT    2/16
                    GET  /api/v5/finance/staking-defi/eth/purchase-redeem-history 1/16

Requests are pre-signed, one set per wall-clock second and user (wrk has no HMAC; the server
keeps no replay cache, so each request costs it a full authentication). Every run starts on a
fresh database (production mode) with ``--users`` funded users, checks the audit at the end, and
reports errors per endpoint (any reply whose code is not "0").

Usage (from the project root; needs wrk and a PostgreSQL and Redis to use)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/load.py [--workers 1,2,4] [--duration 10] [--warmup 2] [--connections 32]
        [--users 64] [--redis-url redis://127.0.0.1:6379/0]

Goal (issue 19): with 2 workers, total throughput >= 1.6x one worker on the same mix.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import balances as b
import orders as o


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    share: int  # of 16
    bodies: tuple[str, ...] = ("",)


MIX = (
    Endpoint("balances", "GET", "/api/v5/asset/balances", 5),
    Endpoint("account", "GET", "/api/v5/account/balance", 2),
    Endpoint("transfer", "POST", "/api/v5/asset/transfer", 2,
             (json.dumps({"ccy": "USDT", "amt": "1", "from": "6", "to": "18"}),)),
    Endpoint("staking", "POST", "/api/v5/finance/staking-defi/eth/purchase", 1, (json.dumps({"amt": "0.01"}),)),
    Endpoint("orders", "POST", "/api/v5/trade/order", 3,
             tuple(json.dumps({"instId": "BTC-USDT", "tdMode": "cash", "side": side, "ordType": "market",
                               "sz": "0.0001", "tgtCcy": "base_ccy"}) for side in ("buy", "sell"))),
    Endpoint("orders-history", "GET", "/api/v5/trade/orders-history?instType=SPOT", 2),
    Endpoint("staking-history", "GET", "/api/v5/finance/staking-defi/eth/purchase-redeem-history", 1),
)

def server(db_url: str, workers: int, redis_url: str, *, pool_prefill: int = 0) -> contextlib.AbstractContextManager[
        tuple[str, subprocess.Popen[bytes]]]:
    """``stakehouse serve --workers N`` (production mode) on ``db_url`` with Redis; each worker opens
    ``pool_prefill`` connections per pool at start (``STAKEHOUSE_POOL_PREFILL``)."""
    return b.server(db_url, b.free_port(), workers=workers, env_extra={
        "STAKEHOUSE_REDIS_URL": redis_url, "STAKEHOUSE_MAX_PRICE_AGE": "86400",
        "STAKEHOUSE_POOL_PREFILL": str(pool_prefill),
        "STAKEHOUSE_FILES_DIR": tempfile.mkdtemp(prefix="stakehouse-load-")})


def setup_user(base: str) -> dict[str, str]:
    user = b.admin(base, "POST", "/admin/users", {"env": "live", "kycLevel": 2, "acceptTerms": ["ETH", "SOL"]})
    uid = str(user["uid"])
    key = b.admin(base, "POST", f"/admin/users/{uid}/api-keys", {"perms": ["read_only", "trade"]})
    creds = {k: str(key[k]) for k in ("apiKey", "secretKey", "passphrase")}
    for ccy, amt in (("USDT", "100000000"), ("BTC", "1000"), ("ETH", "100000")):
        b.admin(base, "POST", f"/admin/users/{uid}/deposits", {"ccy": ccy, "amt": amt})
    for ccy, amt in (("USDT", "50000000"), ("BTC", "1000")):
        reply = o.signed_post(base, creds, "/api/v5/asset/transfer",
                              json.dumps({"ccy": ccy, "amt": amt, "from": "6", "to": "18"}))
        assert reply.get("code") == "0", reply
    return creds


@dataclass
class Figures:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def write_scripts(host: str, users: list[dict[str, str]], seconds: int,
                  extra_lua: Callable[[Endpoint], str] | None = None) -> dict[str, str]:
    """One Lua script file per endpoint of ``MIX``, signed for ``seconds`` from now, with ``extra_lua(ep)``
    appended (e.g. a ``delay()``); the caller deletes the files."""
    scripts = {}
    for ep in MIX:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(b.signed_script(host, ep.method, ep.path, users, seconds, ep.bodies))
            if extra_lua:
                f.write("\n" + extra_lua(ep))
            scripts[ep.name] = f.name
    return scripts


def connections_for(ep: Endpoint, connections: int) -> int:
    return max(1, round(connections * ep.share / 16))


def run_wrk(base: str, ep: Endpoint, script: str, conns: int, seconds: float) -> dict[str, Any]:
    """One ``wrk`` process; its ``RESULT {json}`` lines, merged."""
    out = subprocess.run(["wrk", "-t", "1", "-c", str(conns), "-d", f"{max(1, round(seconds))}s",
                          "--timeout", "10s", "-s", script, base + ep.path.split("?")[0]],
                         capture_output=True, text=True, check=True)
    parsed: dict[str, Any] = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            parsed.update(json.loads(line[len("RESULT "):]))
    if "requests" not in parsed:
        raise RuntimeError(f"wrk for {ep.name} printed no result:\n{out.stdout}\n{out.stderr}")
    return parsed


def run_all(base: str, scripts: dict[str, str], connections: int, seconds: float) -> dict[str, dict[str, Any]]:
    """Every endpoint of ``MIX`` at the same time, each its own ``wrk`` with its share of ``connections``."""
    with ThreadPoolExecutor(len(MIX)) as pool:
        futures = {ep.name: pool.submit(run_wrk, base, ep, scripts[ep.name], connections_for(ep, connections),
                                        seconds) for ep in MIX}
        return {name: fut.result() for name, fut in futures.items()}


def figures(raw: dict[str, dict[str, Any]]) -> dict[str, Figures]:
    return {name: Figures(r["requests"], r["errors"] + r["socket_errors"], r["us"] / 1e6, r["p50"] / 1000,
                          r["p99"] / 1000) for name, r in raw.items()}


def run_mix(base: str, users: list[dict[str, str]], args: argparse.Namespace) -> dict[str, Figures]:
    scripts = write_scripts(base.split("://", 1)[1], users, int(args.warmup + args.duration) + 5)
    try:
        if args.warmup > 0:
            run_all(base, scripts, args.connections, args.warmup)
        raw = run_all(base, scripts, args.connections, args.duration)
    finally:
        for path in scripts.values():
            os.unlink(path)
    return figures(raw)


def setup_users(base: str, n: int) -> list[dict[str, str]]:
    """The BTC-USDT index price, then ``n`` funded users (their credentials)."""
    b.admin(base, "POST", "/admin/markets/BTC-USDT/price", {"px": "60000"})
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda _: setup_user(base), range(n)))


def audit_failure(base: str) -> str | None:
    """None if the audit passes, else what failed."""
    try:
        b.admin(base, "GET", "/admin/audit")
    except RuntimeError as exc:  # 409: a failed check; show which
        return str(exc)
    return None


def bench(workers: int, pg_url: str, args: argparse.Namespace) -> dict[str, Figures]:
    with b.postgres_backend(pg_url) as db_url, server(db_url, workers, args.redis_url) as (base, _proc):
        users = setup_users(base, args.users)
        figs = run_mix(base, users, args)
        if (failed := audit_failure(base)) is not None:
            print(f"AUDIT FAILED with {workers} workers: {failed}", flush=True)
        return figs


def table(results: dict[int, dict[str, Figures]]) -> str:
    out = [f"{'workers':>7} {'endpoint':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}", "-" * 60]
    for workers, figures in results.items():
        for name, f in figures.items():
            out.append(f"{workers:>7} {name:<16} {f.rps:>8.0f} {f.p50_ms:>8.1f} {f.p99_ms:>8.1f} {f.errors:>7}")
        total = sum(f.rps for f in figures.values())
        errors = sum(f.errors for f in figures.values())
        out.append(f"{workers:>7} {'TOTAL':<16} {total:>8.0f} {'':>8} {'':>8} {errors:>7}")
    totals = {w: sum(f.rps for f in figs.values()) for w, figs in results.items()}
    if totals.get(1):
        for w, t in totals.items():
            if w != 1:
                goal = "  (goal >= 1.6x: " + ("met" if t / totals[1] >= 1.6 else "NOT met") + ")" if w == 2 else ""
                out.append(f"{w} workers / 1 worker: {t / totals[1]:.2f}x{goal}")
    return "\n".join(out)


def parse_arguments(p: argparse.ArgumentParser) -> argparse.Namespace:
    """The options of the mix's scripts (this one, ``soak.py``) beside the script's own, parsed;
    wrk and a PostgreSQL required."""
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""))
    p.add_argument("--redis-url", default=os.environ.get("STAKEHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = p.parse_args()
    if not shutil.which("wrk"):
        p.error("wrk is not installed (apt-get install wrk)")
    if not args.pg_url:
        p.error("a PostgreSQL is needed: --pg-url or STAKEHOUSE_TEST_PG_URL")
    return args


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=32)
    args = parse_arguments(p)
    print(f"cpus={os.cpu_count()} connections={args.connections} users={args.users} duration={args.duration:g}s "
          f"(client and server share the machine) run={secrets.token_hex(3)}", flush=True)
    results = {w: bench(w, args.pg_url, args) for w in (int(x) for x in args.workers.split(","))}
    print(table(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
