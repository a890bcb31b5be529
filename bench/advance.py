#!/usr/bin/env python3
"""Benchmark: ``clock advance --days 30`` in the sandbox with resting limit orders on 3 instruments.

For each order count, a fresh sandbox (SQLite by default) gets that many resting limit orders
(buys below and sells above the index, spread over BTC-USDT, ETH-USDT and SOL-USDT and over 100
users), then the clock is advanced 30 days through the same call the admin API and the CLI use
(``Services.advance_clock``). The advance walks the three instruments minute by minute (43 200
steps each), fills every order the path crosses, and runs every other job of those days; the
audit is checked after. The ratios between counts show whether the time is linear in orders.

Usage (from the project root)::

    .venv/bin/python bench/advance.py [--orders 2500,5000,10000] [--days 30] [--backend sqlite|postgres]

Goal (issue 14): 10 000 orders in under 60 s on SQLite, time linear in orders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from stakehouse.assets.service import TransferRequest  # noqa: E402
from stakehouse.config import Settings  # noqa: E402
from stakehouse.db.tables import fills  # noqa: E402
from stakehouse.security import new_server_key  # noqa: E402
from stakehouse.trading.service import PlaceRequest  # noqa: E402
from stakehouse.wiring import Services  # noqa: E402

#: instrument: (base currency, order size, tick)
INSTRUMENTS = {"BTC-USDT": ("BTC", Decimal("0.0001"), Decimal("0.1")),
               "ETH-USDT": ("ETH", Decimal("0.01"), Decimal("0.01")),
               "SOL-USDT": ("SOL", Decimal("0.1"), Decimal("0.01"))}
USERS = 100


def run(url: str, orders: int, days: int) -> tuple[float, float, int]:
    s = Services(Settings(database_url=url, sandbox=True, server_key=new_server_key(), admin_token="bench",
                          log_level="WARNING", nd_sub_order_cap=10**6))
    try:
        s.pin_clock(False)
        uids = []
        for _ in range(USERS):
            uid = s.accounts.create_user(kyc_level=2).uid
            for ccy, amt in (("USDT", "100000000"), ("BTC", "1000"), ("ETH", "10000"), ("SOL", "100000")):
                s.chain.credit_deposit(uid, ccy, Decimal(amt))
                s.assets.transfer(uid, TransferRequest(ccy=ccy, amt=Decimal(amt), from_type=6, to_type=18))
            uids.append(uid)
        index = {inst: s.prices.latest([inst])[inst].px for inst in INSTRUMENTS}
        started = time.perf_counter()
        for i in range(orders):
            inst = list(INSTRUMENTS)[i % 3]
            _, sz, tick = INSTRUMENTS[inst]
            side = "buy" if i % 2 else "sell"
            # 0.2 % to 20 % away from the index: some fill within days, some never
            away = Decimal(1 + (i * 7919) % 100) / Decimal(500)
            px = index[inst] * (1 - away if side == "buy" else 1 + away)
            px = (px / tick).to_integral_value() * tick
            s.trading.place(uids[i % USERS], PlaceRequest(inst, "cash", side, "limit", sz, px))
        placing = time.perf_counter() - started
        started = time.perf_counter()
        s.advance_clock(by=dt.timedelta(days=days))
        advancing = time.perf_counter() - started
        with s.db.read() as conn:
            filled = len(conn.execute(fills.select()).all())
        assert s.audit().ok, s.audit().as_dict()
        return placing, advancing, filled
    finally:
        s.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--orders", default="2500,5000,10000")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--backend", default="sqlite", choices=("sqlite", "postgres"))
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""))
    args = p.parse_args()
    print(f"days={args.days} instruments={len(INSTRUMENTS)} users={USERS} backend={args.backend} "
          f"cpus={os.cpu_count()}", flush=True)
    rows = []
    for n in [int(x) for x in args.orders.split(",")]:
        if args.backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="stakehouse-bench-") as tmp:
                placing, advancing, filled = run(f"sqlite:///{tmp}/bench.db", n, args.days)
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import balances

            with balances.postgres_backend(args.pg_url) as url:
                placing, advancing, filled = run(url, n, args.days)
        rows.append((n, placing, advancing, filled))
        print(f"  {n} orders: placed in {placing:.1f} s, advance {args.days} d in {advancing:.1f} s, "
              f"{filled} filled", flush=True)
    print()
    print(f"{'orders':>7} {'filled':>7} {'advance s':>10} {'s per 1000':>11}  goal (10000, SQLite) < 60 s")
    for n, _placing, advancing, filled in rows:
        goal = ("met" if advancing < 60 else "NOT met") if n == 10000 and args.backend == "sqlite" else ""
        print(f"{n:>7} {filled:>7} {advancing:>10.1f} {advancing / n * 1000:>11.2f}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
