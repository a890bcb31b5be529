#!/usr/bin/env python3
"""Benchmark: order placement through ``POST /api/v5/trade/batch-orders`` versus ``GET /bare``.

Each request is a one-order batch, as ccxt's ``create_order`` sends it: a market order that is
filled at once and posted to the ledger (one journal entry with the fee split). Requests
alternate buys and sells of 0.0001 BTC over ``--users`` users, so no balance runs dry. Both
endpoints are measured against the same ``stakehouse serve --workers 1`` process (production
mode, an index price pushed at the start), once per database backend, with the load generator
of ``bench/balances.py`` (wrk with a Lua script of pre-signed requests, one set per second).

Usage (from the project root)::

    .venv/bin/python bench/orders.py [--duration 5] [--warmup 1] [--connections 16] [--users 16]
        [--backends sqlite,postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Goal (issue 14): placed-and-filled orders/s >= 40 % of bare requests/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import balances as b

ORDERS = "/api/v5/trade/batch-orders"
SIZE = "0.0001"


def order_body(side: str) -> str:
    return json.dumps([{"instId": "BTC-USDT", "tdMode": "cash", "side": side, "ordType": "market", "sz": SIZE,
                        "tgtCcy": "base_ccy"}], separators=(",", ":"))


def signed_post(base: str, creds: dict[str, str], path: str, body: str) -> dict[str, object]:
    """POST ``body`` exactly as signed (``b.http`` would re-serialise it)."""
    req = urllib.request.Request(base + path, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", **b.okx_headers(creds, "POST", path, body)})
    with urllib.request.urlopen(req, timeout=10) as resp:
        out: dict[str, object] = json.loads(resp.read())
    return out


def setup_trader(base: str) -> dict[str, str]:
    user = b.admin(base, "POST", "/admin/users", {"env": "live", "kycLevel": 2})
    uid = str(user["uid"])
    key = b.admin(base, "POST", f"/admin/users/{uid}/api-keys", {"perms": ["read_only", "trade"]})
    creds = {k: str(key[k]) for k in ("apiKey", "secretKey", "passphrase")}
    for ccy, amt in (("USDT", "100000000"), ("BTC", "1000")):
        b.admin(base, "POST", f"/admin/users/{uid}/deposits", {"ccy": ccy, "amt": amt})
        body = json.dumps({"ccy": ccy, "amt": amt, "from": "6", "to": "18"})
        reply = signed_post(base, creds, "/api/v5/asset/transfer", body)
        assert reply.get("code") == "0", reply
    reply = signed_post(base, creds, ORDERS, order_body("buy"))
    assert reply.get("code") == "0", reply  # sanity: one order fills
    return creds


def wrk_script(host: str, users: list[dict[str, str]], seconds: int) -> str:
    return b.signed_script(host, "POST", ORDERS, users, seconds, (order_body("buy"), order_body("sell")))


def run_orders(base: str, users: list[dict[str, str]], args: argparse.Namespace) -> b.Result:
    return b.run_wrk(base, ORDERS, users, args, lua=lambda host, seconds: wrk_script(host, users, seconds))


def bench_backend(name: str, db_url: str, args: argparse.Namespace) -> b.Row:
    os.environ["STAKEHOUSE_MAX_PRICE_AGE"] = "86400"  # one pushed price serves the whole run
    with b.server(db_url, b.free_port()) as (base, _proc):
        b.admin(base, "POST", "/admin/markets/BTC-USDT/price", {"px": "60000"})
        users = [setup_trader(base) for _ in range(args.users)]
        row = b.Row(name)
        args.threads = 1
        row.bare = b.run_wrk(base, b.BARE, [], args)
        row.auth = run_orders(base, users, args)
        audit = b.admin(base, "GET", "/admin/audit")
        if not audit.get("ok"):
            row.note = "AUDIT FAILED"
        return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""))
    args = p.parse_args()
    if not shutil.which("wrk"):
        p.error("wrk is not installed (apt-get install wrk)")
    print(f"connections={args.connections} users={args.users} duration={args.duration:g}s cpus={os.cpu_count()}",
          flush=True)
    rows: list[b.Row] = []
    for backend in [x.strip() for x in args.backends.split(",") if x.strip()]:
        if backend == "sqlite":
            ctx: contextlib.AbstractContextManager[str] = b.sqlite_backend()
        elif not args.pg_url:
            print("postgres: skipped (no --pg-url and STAKEHOUSE_TEST_PG_URL is not set)")
            continue
        else:
            ctx = b.postgres_backend(args.pg_url)
        print(f"{backend}: running ...", flush=True)
        with ctx as db_url:
            rows.append(bench_backend(backend, db_url, args))
    print()
    head = f"{'backend':<10} {'bare req/s':>11} {'orders/s':>9} {'ratio':>7} {'errors b/o':>11}  goal>=40%"
    print(head)
    print("-" * len(head))
    for row in rows:
        assert row.bare is not None and row.auth is not None
        ratio = row.auth.rps / row.bare.rps if row.bare.rps else 0.0
        print(f"{row.backend:<10} {row.bare.rps:>11.0f} {row.auth.rps:>9.0f} {ratio:>7.1%} "
              f"{f'{row.bare.errors}/{row.auth.errors}':>11}  {'met' if ratio >= 0.4 else 'NOT met'} {row.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
