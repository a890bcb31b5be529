#!/usr/bin/env python3
"""Benchmark (issue 16): settling DCD orders that all expire at one instant, compared with the bare set-based
statement that computes the same payouts.

For each backend (SQLite file, PostgreSQL database) and each number of orders, the script builds a fresh
database through ``Services`` in production mode, so that the settlement price is the candle stored here and no
walked sandbox path. It creates one ND broker (level 1) and ``--users`` sub-accounts, then bulk-loads:

* two BTC-USDT products that expire at the same instant: a call at 63 000 and a put at 57 000, both 7-day,
  the strikes of the worked example in ``docs/dcd.md``;
* ``--orders`` live orders, about half on each product. User ``i % users`` holds order ``i``, so with the
  defaults each of 10 000 users holds 10 orders. Every order has its own used quote.
* the order values:
  * calls: notional in BTC with 4 decimals (the default series' step, 0.0001), from 0.0001 to 2 BTC;
  * puts: notional in whole USDT (the default step, 1), from 10 to 100 000 USDT;
  * ``abs_yield`` with 8 decimals, about 0.8-1.0 % (7 days);
  * ``markup_yield`` with 8 decimals: zero for 40 % of the orders;
* one subscription journal entry that serves every order as its ``entry_id``. It holds ``s:dcd_book`` the
  orders' notionals, taken from ``s:custody``, so the audit balances.
* a USDT funding account (balance 0) for every even-numbered user. The odd-numbered users have none:
  ``post_credits`` opens theirs. Both paths are measured.
* the index candle of the minute before ``expTime``: ``--sett-price``, by default 64 000.

With the default price, the call is exercised (it pays ``notional x (1 + absYield) x 63 000`` in USDT) and the
put is not (it pays ``notional x (1 + absYield)`` in USDT). Both payout branches run, and everything is paid in
USDT. With ``--sett-price 56000`` the call pays BTC and the put is exercised (it divides by the strike, in BTC).

The loaded database is kept as a template. Each repetition settles a fresh copy of it: a file copy on SQLite,
``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. The settlement therefore runs in its own committed
transactions, exactly as in production, and every repetition starts from the same state. On each copy, in
this order:

1. **warm-up**: the bare statement, untimed (the copy's pages into the caches);
2. **bare**: the bare statement, timed. It is ONE set-based ``SELECT``. For every live order of the products
   expiring at that instant, it computes the payout (amount and currency, rounded down to the currency's scale:
   ``trunc`` on PostgreSQL; on SQLite the exact functions ``decmul``, ``decadd``, ``dectrunc`` and ``decsum`` of
   ``db/engine.py``, plus ``decdiv``/``deccmp`` registered here, because ``engine.py`` has no exact division or
   comparison). It also computes the yield and the markup, and returns the sums per (product, uid). All rows are
   fetched; nothing is written.
3. **settle**: ``DcdSettlement.fix`` for both products, then ``DcdSettlement.pay`` for both. These are the real
   code, each in its own ``db.write()`` transaction. Each step is timed.

Goal: settle <= 3 x bare with 100 000 orders, on both databases, memory flat (compare the ``--small-orders``
case with the full one).

Each repetition also measures, each on a copy of its own, after the same warm-up:

* **bare write**: ONE ``UPDATE`` that settles every order (state, price, payout, yield, markup; no ledger),
  rolled back. It is what writing the orders costs at the least: a reference, not part of the goal.
* PostgreSQL only, **pay***: the real code again, with ``ANALYZE dcd_orders`` (untimed) between fix and pay.
  These are the statistics autovacuum may have refreshed in the two hours between ``expTime`` and
  ``settTime``; the fix has just moved every order to a state the old statistics do not know.
* with ``--sketch`` (the default), **sb**: the real fix, then ``SetBasedSettlement.pay``. This subclass, defined
  here, computes the payouts in SQL instead of the Python loop and its 100 000-row ``executemany``. It sums them
  per user once into a temporary table, posts them through ``post_credits`` as the real one does, then writes
  every order's payout, state and entry in ONE ``UPDATE``. It is the change proposed for
  ``DcdSettlement.pay``, measured and checked like the real one. It is not in ``src/``.

Usage (from the project root)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/dcd_settlement.py [--orders 100000] [--small-orders 10000] [--users 10000]
          [--sett-price 64000] [--db sqlite|postgres|both] [--pg-url URL] [--repeat 3] [--no-sketch] [--profile]

``--profile`` settles more copies under cProfile and a statement timer: the real code, the real code with
fresh statistics (PostgreSQL), and the set-based pay. It prints their statements by time, then the profile.

Each (backend, orders) case runs in a child process of its own, so its memory figures are its own. Memory:
* RSS: the growth of the process's peak RSS during the first timed settlement (``/proc/self/clear_refs``
  resets the peak). It includes the SQLite page cache; the PostgreSQL server is not in it.
* Python: the peak of Python allocations (``tracemalloc``) during one more, untimed settlement on another copy.

Checks, after every settlement:
* every order is ``settled``;
* per product, the sums of ``sett_amt``, ``yield_amt`` and ``markup_amt`` and the paid currency equal an
  independent computation in this script (its own ``quantize`` of the rule of ``docs/dcd.md`` §1 per
  generated order), and so do the bare statement's sums;
* the settle entries' user postings sum to the same total, with one posting per (product, uid);
* the broker got the markups;
* after the first full run, ``services.audit()`` is ok (the DCD invariants included).
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
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from balances import postgres_backend  # bench/ is on the path: these scripts run from it
from reward_run import PeakMemory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

UID_BASE = 10**15 + 6 * 10**14  # sub-account uids: 16-digit strings like the service's
GOAL = 3.0  # settle <= GOAL x bare
CHUNK = 20_000  # rows per executemany / COPY flush while loading
CALL_STK, PUT_STK = Decimal(63000), Decimal(57000)
TMP = "bench_dcd_credits"  # the set-based pay's temporary table
SCALES = {"BTC": 8, "USDT": 6}  # the seeded currencies' scales (checked against the database)

QUOTE_COLUMNS = ("quote_id", "uid", "product_id", "cl_req_id", "notional", "tag", "markup", "index_px", "raw_yield",
                 "abs_yield", "annual_yield", "markup_yield", "created_at", "expires_at", "used")
ORDER_COLUMNS = ("ord_id", "uid", "broker_uid", "quote_id", "cl_ord_id", "product_id", "notional", "notional_ccy",
                 "abs_yield", "annual_yield", "markup_yield", "tag", "state", "exp_time", "sett_time", "entry_id",
                 "created_at", "updated_at")
USER_COLUMNS = ("uid", "env", "master_uid", "parent_uid", "level", "sub_name", "label", "kyc_level", "frozen",
                "frozen_funcs", "can_trans_out", "created_at")
ACCOUNT_COLUMNS = ("owner", "uid", "acct_type", "ccy", "allow_negative", "available", "locked", "updated_at")


# -- data ------------------------------------------------------------------------------------------


def plain(value: Decimal) -> str:
    """Canonical decimal text (SQLite's money storage; PostgreSQL parses it as NUMERIC)."""
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def down(value: Decimal, scale: int) -> Decimal:
    """Rounded toward zero to ``scale`` decimals (this script's own, not ``money.round_down``)."""
    return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_DOWN)


@dataclass
class Product:
    product_id: str
    opt_type: str
    stk: Decimal
    notional_ccy: str
    pay_ccy: str = ""
    mode: str = ""  # keep | mul | div: the payout is grown, grown x stk or grown / stk


@dataclass
class Expected:
    """What settling the generated orders must give, per product, computed here from the generated values."""

    count: dict[str, int] = field(default_factory=dict)
    notional: dict[str, Decimal] = field(default_factory=dict)
    amount: dict[str, Decimal] = field(default_factory=dict)
    yield_amt: dict[str, Decimal] = field(default_factory=dict)
    markup: dict[str, Decimal] = field(default_factory=dict)
    uids: dict[str, set[str]] = field(default_factory=dict)


def products_at(exp: dt.datetime, px: Decimal) -> list[Product]:
    """The call and the put expiring at ``exp``, with the branch the settlement price ``px`` takes."""
    tag = f"{exp:%y%m%d}"
    call = Product(f"BTC-USDT-{tag}-{CALL_STK}-C", "C", CALL_STK, "BTC")
    put = Product(f"BTC-USDT-{tag}-{PUT_STK}-P", "P", PUT_STK, "USDT")
    call.pay_ccy, call.mode = ("USDT", "mul") if px >= CALL_STK else ("BTC", "keep")
    put.pay_ccy, put.mode = ("BTC", "div") if px <= PUT_STK else ("USDT", "keep")
    return [call, put]


def expected_payout(p: Product, notional: Decimal, abs_yield: Decimal) -> Decimal:
    grown = notional * (1 + abs_yield)
    raw = grown * p.stk if p.mode == "mul" else grown / p.stk if p.mode == "div" else grown
    return down(raw, SCALES[p.pay_ccy])


def generate(n: int, users: int, products: list[Product], broker: str, exp: dt.datetime, sqlite: bool,
             expected: Expected) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(quote rows, order rows) in ``QUOTE_COLUMNS``/``ORDER_COLUMNS`` order, ``entry_id`` left as ``None`` (set
    by the loader). Order ``i`` (id ``i + 1``) belongs to user ``i % users``; a call or a put at random."""
    rng = random.Random(16)
    sett = exp + dt.timedelta(hours=2)
    listed = exp - dt.timedelta(days=7)

    def ts(moment: dt.datetime) -> Any:
        return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") \
            if sqlite else moment

    quotes, orders = [], []
    for i in range(n):
        uid = str(UID_BASE + i % users)
        p = products[0] if rng.random() < 0.5 else products[1]
        if p.opt_type == "C":
            notional = Decimal(rng.randrange(1, 20_001)).scaleb(-4)  # 0.0001 .. 2 BTC
            abs_yield = Decimal(rng.randrange(850_000, 1_000_000)).scaleb(-8)
        else:
            notional = Decimal(rng.randrange(10, 100_001))  # 10 .. 100 000 USDT
            abs_yield = Decimal(rng.randrange(800_000, 950_000)).scaleb(-8)
        if rng.random() < 0.4:
            markup, markup_yield = None, Decimal(0)
        else:
            markup = Decimal(rng.randrange(1, 21)).scaleb(-2)  # markUp 0.01 .. 0.2 as the broker sent it
            markup_yield = Decimal(rng.randrange(1_000, 200_000)).scaleb(-8)
        raw_yield = abs_yield + markup_yield + Decimal(rng.randrange(100_000, 300_000)).scaleb(-8)
        annual = (abs_yield * 365 / 7).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        created = listed + dt.timedelta(seconds=i * (6 * 86_400) // n)
        quote_id = f"DCDQ{i:024x}"
        quotes.append((quote_id, uid, p.product_id, "", plain(notional), "", None if markup is None else plain(markup),
                       "60000", plain(raw_yield), plain(abs_yield), plain(annual), plain(markup_yield), ts(created),
                       ts(created + dt.timedelta(seconds=10)), 1 if sqlite else True))
        orders.append((i + 1, uid, broker, quote_id, "", p.product_id, plain(notional), p.notional_ccy,
                       plain(abs_yield), plain(annual), plain(markup_yield), "", "live", ts(exp), ts(sett), None,
                       ts(created), ts(created)))
        k = p.product_id
        expected.count[k] = expected.count.get(k, 0) + 1
        expected.notional[k] = expected.notional.get(k, Decimal(0)) + notional
        expected.amount[k] = expected.amount.get(k, Decimal(0)) + expected_payout(p, notional, abs_yield)
        scale = SCALES[p.notional_ccy]
        expected.yield_amt[k] = expected.yield_amt.get(k, Decimal(0)) + down(notional * abs_yield, scale)
        expected.markup[k] = expected.markup.get(k, Decimal(0)) + down(notional * markup_yield, scale)
        expected.uids.setdefault(k, set()).add(uid)
    return quotes, orders


def bulk_load(services: Any, n: int, users: int, products: list[Product], exp: dt.datetime, px: Decimal,
              expected: Expected) -> str:
    """The broker, its sub-accounts, half of their USDT funding accounts, the products, the settlement candle,
    the subscription entry, and ``n`` quotes and live orders; returns the broker's uid."""
    from stakehouse.assets.reference import all_currencies
    from stakehouse.clock import to_ms
    from stakehouse.db.tables import dcd_products, index_candles
    from stakehouse.dcd.runs import BOOK
    from stakehouse.ledger.journal import Ledger
    from stakehouse.ledger.rules import AccountRef, Leg

    broker = services.accounts.create_user(kyc_level=2).uid
    services.broker.set_broker(broker, level=1)
    pg = services.db.dialect == "postgresql"
    quotes, orders = generate(n, users, products, broker, exp, not pg, expected)
    with services.db.write() as conn:
        scales = {ccy: c.scale for ccy, c in all_currencies(conn).items()}
        assert all(scales[c] == s for c, s in SCALES.items()), scales
        now = services.clock.now()
        listed = exp - dt.timedelta(days=7)
        for p in products:
            call = p.opt_type == "C"
            conn.execute(dcd_products.insert().values(
                product_id=p.product_id, ccy="BTC", alt_ccy="USDT", uly="BTC-USD", index_inst="BTC-USDT",
                opt_type=p.opt_type, stk=p.stk, notional_ccy=p.notional_ccy,
                min_size=Decimal("0.0001") if call else Decimal(10), max_size=Decimal(10**6),
                step_size=Decimal("0.0001") if call else Decimal(1), quota=Decimal(10**12),
                sold=expected.notional.get(p.product_id, Decimal(0)), vol=Decimal("0.55"), margin=Decimal("0.2"),
                list_time=listed, exp_time=exp, sett_time=exp + dt.timedelta(hours=2),
                stop_trading_time=exp - dt.timedelta(hours=1)))
        minute = exp - dt.timedelta(minutes=1)  # the candle whose close is the index at expTime
        conn.execute(index_candles.insert().values(inst_id="BTC-USDT", ts=to_ms(minute), o=px, h=px, l=px, c=px,
                                                   last_at=exp - dt.timedelta(seconds=1)))
        legs = []
        for p in products:
            amount = expected.notional.get(p.product_id, Decimal(0))
            legs += [Leg(AccountRef.system(BOOK, p.notional_ccy), amount),
                     Leg(AccountRef.system("custody", p.notional_ccy), -amount)]
        entry = Ledger().post(conn, type="bench_dcd_subscribe", ref="bench", idempotency_key="bench:dcd:subscribe",
                              legs=legs, at=listed, memo=f"the subscriptions of {n} DCD orders").entry_id
        orders = [(*o[:15], entry, *o[16:]) for o in orders]
        created: Any = now if pg else now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(
            sep=" ", timespec="microseconds")
        user_rows = [(str(UID_BASE + s), "live", broker, broker, 1, f"dcd{s:08d}", "", 0, False, "", True, created)
                     for s in range(users)]
        accounts = [(f"u:{UID_BASE + s}", str(UID_BASE + s), 6, "USDT", False, "0", "0", created)
                    for s in range(0, users, 2)]  # the even-numbered users already have a USDT funding account
        tables = (("users", USER_COLUMNS, user_rows), ("ledger_accounts", ACCOUNT_COLUMNS, accounts),
                  ("dcd_quotes", QUOTE_COLUMNS, quotes), ("dcd_orders", ORDER_COLUMNS, orders))
        raw = conn.connection.driver_connection
        if pg:
            with raw.cursor() as cur:
                for table, cols, rows in tables:
                    for i in range(0, len(rows), CHUNK):
                        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                            for r in rows[i:i + CHUNK]:
                                cp.write_row(r)
                cur.execute(f"SELECT setval(pg_get_serial_sequence('dcd_orders', 'ord_id'), {n})")
        else:
            for table, cols, rows in tables:
                sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                for i in range(0, len(rows), CHUNK):
                    raw.executemany(sql, rows[i:i + CHUNK])
    if pg:  # statistics and visibility as autovacuum would have them; SQLite: none, as the application
        with services.db.query() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return broker


# -- the bare statement, and the set-based pay proposed -------------------------------------------


def _deccmp(a: Any, b: Any) -> int:
    x, y = Decimal(str(a)), Decimal(str(b))
    return (x > y) - (x < y)


def _decdiv(a: Any, b: Any) -> str:
    """Exact enough ``a / b`` over decimal TEXT (80 significant digits, the money context's; as the rule)."""
    return plain(Decimal(str(a)) / Decimal(str(b)))


def bench_functions(conn: Any) -> None:
    """SQLite: ``deccmp`` and ``decdiv``, which ``db/engine.py`` does not register, on this connection."""
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        raw.create_function("deccmp", 2, _deccmp, deterministic=True)
        raw.create_function("decdiv", 2, _decdiv, deterministic=True)


def _sql(sqlite: bool, t: str) -> dict[str, Any]:
    """The pieces of the bare statements, for orders aliased ``t``: exact decimal functions on SQLite."""
    if sqlite:
        grown = f"decmul({t}.notional, decadd(1, {t}.abs_yield))"
        return {"ge": "deccmp(:px, p.stk) >= 0", "le": "deccmp(:px, p.stk) <= 0", "grown": grown,
                "mul": f"decmul({grown}, p.stk)", "div": f"decdiv({grown}, p.stk)", "sum": "decsum",
                "trunc": lambda x, scale: f"dectrunc({x}, {scale})", "times": lambda a, b: f"decmul({a}, {b})",
                "px": ":px"}
    grown = f"{t}.notional * (1 + {t}.abs_yield)"
    return {"ge": "CAST(:px AS numeric) >= p.stk", "le": "CAST(:px AS numeric) <= p.stk", "grown": grown,
            "mul": f"{grown} * p.stk", "div": f"{grown} / p.stk", "sum": "sum",
            "trunc": lambda x, scale: f"trunc({x}, {scale})", "times": lambda a, b: f"{a} * {b}",
            "px": "CAST(:px AS numeric)"}


def _products_cte(q: dict[str, Any]) -> str:
    """The products expiring at ``:exp``, with the branch ``:px`` takes, the paid currency and the scales."""
    return f"""WITH p AS MATERIALIZED (
  SELECT p.product_id, p.stk, p.mode, pc.ccy AS pay_ccy, pc.scale AS pay_scale, nc.scale AS n_scale
  FROM (SELECT product_id, stk, notional_ccy,
               CASE WHEN opt_type = 'C' AND {q["ge"]} THEN 'mul' WHEN opt_type = 'P' AND {q["le"]} THEN 'div'
                    ELSE 'keep' END AS mode,
               CASE WHEN opt_type = 'C' AND {q["ge"]} THEN alt_ccy WHEN opt_type = 'P' AND {q["le"]} THEN ccy
                    ELSE notional_ccy END AS pay_ccy
        FROM dcd_products p WHERE exp_time = :exp) p
  JOIN currencies pc ON pc.ccy = p.pay_ccy
  JOIN currencies nc ON nc.ccy = p.notional_ccy
)
"""


def bare_sql(sqlite: bool) -> str:
    """Every live order's payout, yield and markup at price ``:px`` for the products expiring at ``:exp``,
    summed per (product, paid currency, uid, broker): one statement, nothing written."""
    q = _sql(sqlite, "o")
    trunc, times, total = q["trunc"], q["times"], q["sum"]
    amount = trunc(f"CASE p.mode WHEN 'mul' THEN {q['mul']} WHEN 'div' THEN {q['div']} ELSE {q['grown']} END",
                   "p.pay_scale")
    return _products_cte(q) + f"""SELECT o.product_id, p.pay_ccy AS ccy, o.uid, o.broker_uid,
       {total}({amount}) AS amount,
       {total}({trunc(times("o.notional", "o.abs_yield"), "p.n_scale")}) AS yield_amt,
       {total}({trunc(times("o.notional", "o.markup_yield"), "p.n_scale")}) AS markup_amt,
       count(*) AS orders
FROM dcd_orders o JOIN p ON p.product_id = o.product_id
WHERE o.state = 'live'
GROUP BY o.product_id, p.pay_ccy, o.uid, o.broker_uid
"""


def bare_write_sql(sqlite: bool) -> str:
    """Every live order of the products expiring at ``:exp`` settled in ONE ``UPDATE``: state, price, payout,
    yield, markup (no ledger): what writing the orders' settlement costs at the least."""
    t = "dcd_orders"
    q = _sql(sqlite, t)
    trunc, times = q["trunc"], q["times"]
    amount = trunc(f"CASE p.mode WHEN 'mul' THEN {q['mul']} WHEN 'div' THEN {q['div']} ELSE {q['grown']} END",
                   "p.pay_scale")
    return _products_cte(q) + f"""UPDATE {t} SET state = 'settled', sett_price = {q["px"]}, sett_amt = {amount},
  sett_ccy = p.pay_ccy, yield_amt = {trunc(times(f"{t}.notional", f"{t}.abs_yield"), "p.n_scale")},
  markup_amt = {trunc(times(f"{t}.notional", f"{t}.markup_yield"), "p.n_scale")}, settled_at = :sett,
  updated_at = :sett
FROM p WHERE {t}.product_id = p.product_id AND {t}.state = 'live'
"""


def stamp(moment: dt.datetime, sqlite: bool) -> Any:
    """A moment as a bound parameter of a text statement: SQLite keeps naive UTC text."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") \
        if sqlite else moment


def _params(sqlite: bool, exp: dt.datetime, px: Decimal) -> dict[str, Any]:
    return {"px": plain(px) if sqlite else px, "exp": stamp(exp, sqlite),
            "sett": stamp(exp + dt.timedelta(hours=2), sqlite)}


def time_bare_write(services: Any, exp: dt.datetime, px: Decimal, n: int) -> float:
    """The bare write, in a transaction rolled back."""
    from sqlalchemy import text

    with services.db.engine.connect() as conn:
        tx = conn.begin()
        try:
            sqlite = conn.dialect.name == "sqlite"
            bench_functions(conn)
            stmt = text(bare_write_sql(sqlite))
            started = time.perf_counter()
            done = conn.execute(stmt, _params(sqlite, exp, px)).rowcount
            seconds = time.perf_counter() - started
            if sqlite:  # the driver counts no rows for a statement that starts with WITH
                done = conn.exec_driver_sql("SELECT changes()").scalar_one()
            if done != n:
                raise AssertionError(f"bare write: {done} orders, expected {n}")
            return seconds
        finally:
            tx.rollback()


def time_bare(services: Any, exp: dt.datetime, px: Decimal) -> tuple[float, list[Any]]:
    """The bare statement, executed and every row fetched."""
    from sqlalchemy import text

    with services.db.read() as conn:
        sqlite = conn.dialect.name == "sqlite"
        bench_functions(conn)
        stmt = text(bare_sql(sqlite))
        params = _params(sqlite, exp, px)
        del params["sett"]
        started = time.perf_counter()
        rows = conn.execute(stmt, params).all()
        return time.perf_counter() - started, rows


def set_based_settlement(services: Any) -> Any:
    """``DcdSettlement`` whose ``pay`` computes the payouts in SQL instead of the Python loop and its
    ``executemany``: summed per user once into a temporary table (the credits, posted as the real one posts
    them), then written with the state and the entry in ONE ``UPDATE`` per product."""
    from sqlalchemy import select, text

    from stakehouse.assets.reference import all_currencies
    from stakehouse.db.dialect import for_update
    from stakehouse.db.tables import dcd_orders, dcd_products
    from stakehouse.dcd.runs import BOOK, DcdSettlement
    from stakehouse.ledger.journal import Credits, Ledger
    from stakehouse.ledger.rules import FUNDING, AccountRef, Leg

    class SetBasedSettlement(DcdSettlement):
        def pay(self, product_id: str, sett_time: dt.datetime) -> int:
            c = dcd_orders.c
            with self.db.write() as conn:
                sqlite = conn.dialect.name == "sqlite"
                bench_functions(conn)
                p = conn.execute(for_update(conn, select(dcd_products).where(
                    dcd_products.c.product_id == product_id))).one()
                pending = (c.product_id == product_id, c.state == "pending_settled")
                prices = conn.execute(select(c.sett_price).where(*pending).distinct()).scalars().all()
                if not prices:
                    return 0
                if len(prices) > 1:
                    raise NotImplementedError("one settlement price per product (fix gives them all the same)")
                exercised = prices[0] >= p.stk if p.opt_type == "C" else prices[0] <= p.stk
                paid_ccy = (p.alt_ccy if p.opt_type == "C" else p.ccy) if exercised else p.notional_ccy
                scales = {ccy: cur.scale for ccy, cur in all_currencies(conn).items()}
                if sqlite:
                    grown = "decmul(notional, decadd(1, abs_yield))"
                    amount = (f"decmul({grown}, :stk)" if exercised and p.opt_type == "C" else
                              f"decdiv({grown}, :stk)" if exercised else grown)
                    amount, yld, markup = (f"dectrunc({amount}, :p_scale)",
                                           "dectrunc(decmul(notional, abs_yield), :n_scale)",
                                           "dectrunc(decmul(notional, markup_yield), :n_scale)")
                else:
                    grown = "notional * (1 + abs_yield)"
                    amount = (f"{grown} * :stk" if exercised and p.opt_type == "C" else
                              f"{grown} / :stk" if exercised else grown)
                    amount, yld, markup = (f"trunc({amount}, :p_scale)", "trunc(notional * abs_yield, :n_scale)",
                                           "trunc(notional * markup_yield, :n_scale)")
                values = {"stk": plain(p.stk) if sqlite else p.stk, "p_scale": scales[paid_ccy],
                          "n_scale": scales[p.notional_ccy], "ccy": paid_ccy, "pid": product_id,
                          "at": stamp(sett_time, sqlite)}
                where = "product_id = :pid AND state = 'pending_settled'"
                # 1. The payouts and markups, computed in SQL and summed per (uid, broker) once, into a
                # temporary table: the ledger reads the credits several times (their total, the accounts found,
                # those opened), SQLite adds them with a Python aggregate, and a temporary table gives the
                # PostgreSQL planner its true size (no stale statistics). Nothing is written to the orders yet.
                agg = "decsum" if sqlite else "sum"
                conn.execute(text(f"CREATE TEMPORARY TABLE {TMP} AS SELECT uid, broker_uid, {agg}({amount}) AS "
                                  f"amount, {agg}({markup}) AS markup FROM {dcd_orders.name} WHERE {where} "
                                  "GROUP BY uid, broker_uid"), values)
                total = conn.execute(text(f"SELECT {agg}(amount) FROM {TMP}")).scalar_one()
                markups = conn.execute(text(f"SELECT broker_uid, {agg}(markup) FROM {TMP} GROUP BY broker_uid "
                                            "ORDER BY broker_uid")).all()
                credits = Credits(select=f"SELECT uid, {agg}(amount) AS amount FROM {TMP} GROUP BY uid",
                                  params={}, acct_type=FUNDING, ccy=paid_ccy)
                counter = [Leg(AccountRef.system(BOOK, paid_ccy), -Decimal(total))]
                for broker_uid, amount_sum in markups:
                    if Decimal(amount_sum):
                        counter += [Leg(AccountRef.system(BOOK, p.notional_ccy), -Decimal(amount_sum)),
                                    Leg(AccountRef.user(broker_uid, FUNDING, p.notional_ccy), Decimal(amount_sum))]
                posted = self.ledger.post_credits(conn, type="dcd_settle", ref=product_id,
                                                  idempotency_key=f"dcd:settle:{product_id}", at=sett_time,
                                                  credits=credits, counter_legs=counter)
                # 2. Every order's payout, state and entry in ONE update: one new version of each row in this
                # transaction (PostgreSQL re-checks all six foreign keys of a row updated twice in one).
                n = conn.execute(text(
                    f"UPDATE {dcd_orders.name} SET sett_amt = {amount}, sett_ccy = :ccy, yield_amt = {yld}, "
                    f"markup_amt = {markup}, state = 'settled', settled_at = :at, updated_at = :at, "
                    f"settle_entry_id = :entry WHERE {where}"), {**values, "entry": posted.entry_id}).rowcount
                conn.execute(text(f"DROP TABLE {TMP}"))
            return int(n)

    return SetBasedSettlement(services.db, services.prices, Ledger())


# -- measurements ----------------------------------------------------------------------------------


@dataclass
class Case:
    backend: str
    orders: int
    users: int
    sett_price: str
    load_s: float = 0.0
    copy_s: float = 0.0
    bare_s: list[float] = field(default_factory=list)
    bare_write_s: list[float] = field(default_factory=list)
    fix_s: list[float] = field(default_factory=list)
    pay_s: list[float] = field(default_factory=list)
    settle_s: list[float] = field(default_factory=list)
    fresh_pay_s: list[float] = field(default_factory=list)
    sketch_fix_s: list[float] = field(default_factory=list)
    sketch_pay_s: list[float] = field(default_factory=list)
    sketch_settle_s: list[float] = field(default_factory=list)
    bare_rss_mb: float = 0.0
    settle_rss_mb: float = 0.0
    settle_traced_mb: float = 0.0
    sketch_traced_mb: float = 0.0
    verified: str = ""
    audit: str = ""
    profile: str = ""
    error: str = ""

    def med(self, what: str) -> float:
        values: list[float] = getattr(self, what)
        return statistics.median(values) if values else 0.0


class Template:
    """The loaded database, and fresh copies of it (one per settlement)."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend, self.url = backend, url

    @contextlib.contextmanager
    def copy(self) -> Iterator[str]:
        if self.backend == "sqlite":
            src = self.url.split(":///", 1)[1]
            with tempfile.TemporaryDirectory(prefix="stakehouse-bench-copy-") as tmp:
                shutil.copyfile(src, f"{tmp}/bench.db")
                yield f"sqlite:///{tmp}/bench.db"
            return
        import psycopg

        scheme, rest = self.url.split("://", 1)
        head, _, template = rest.rpartition("/")
        admin = "postgresql://" + head + "/postgres"
        name = "stakehouse_bench_" + secrets.token_hex(4)
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield f"{scheme}://{head}/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close_source(self) -> None:
        """SQLite: fold the WAL into the file, so that a file copy is the whole database."""
        if self.backend == "sqlite":
            raw = sqlite3.connect(self.url.split(":///", 1)[1])
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.close()


def make_services(url: str) -> Any:
    from stakehouse.config import Settings
    from stakehouse.security import new_server_key
    from stakehouse.wiring import Services

    return Services(Settings(database_url=url, sandbox=False, server_key=new_server_key(),
                             admin_token="bench-" + secrets.token_hex(8), log_level="WARNING"))


@contextlib.contextmanager
def sqlite_template() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="stakehouse-bench-") as tmp:
        yield f"sqlite:///{tmp}/bench.db"


#: Users paid per transaction by the real settlement (``--chunk-size``).
CHUNK_SIZE = 50_000


def settle(services: Any, products: list[Product], exp: dt.datetime, *, sketch: bool = False,
           analyze_between: bool = False, memory: PeakMemory | None = None,
           profile: cProfile.Profile | None = None) -> tuple[float, float]:
    """fix both products, then pay both (each in its own transaction, as the job does); (fix s, pay s).
    ``analyze_between``: ``ANALYZE dcd_orders`` between fix and pay, untimed (PostgreSQL: the statistics
    autovacuum may have refreshed in the two hours between expTime and settTime)."""
    from stakehouse.dcd.runs import DcdSettlement
    from stakehouse.ledger.journal import Ledger

    job = set_based_settlement(services) if sketch else DcdSettlement(services.db, services.prices, Ledger(),
                                                                       CHUNK_SIZE)
    sett = exp + dt.timedelta(hours=2)
    with memory if memory is not None else contextlib.nullcontext():
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        fixed = sum(job.fix(p.product_id, exp) for p in products)
        fix_s = time.perf_counter() - started
        if profile is not None:
            profile.disable()
        if analyze_between:
            with services.db.query() as conn:
                conn.exec_driver_sql("ANALYZE dcd_orders")
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        paid = sum(job.pay(p.product_id, sett) for p in products)
        pay_s = time.perf_counter() - started
        if profile is not None:
            profile.disable()
    if fixed != paid:
        raise AssertionError(f"fixed {fixed} orders, paid {paid}")
    return fix_s, pay_s


@contextlib.contextmanager
def statement_times(services: Any) -> Iterator[list[tuple[float, int, str]]]:
    """(seconds, parameter sets, statement) of every statement executed through SQLAlchemy meanwhile (the
    SQLite page loop of ``Credits.apply_in_pages`` uses the driver directly: not in it)."""
    from sqlalchemy import event

    out: list[tuple[float, int, str]] = []

    def before(conn: Any, _cursor: Any, _stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, stmt: str, params: Any, _ctx: Any, many: bool) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        out.append((seconds, len(params) if many else 1, " ".join(stmt.split())))

    engine = services.db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield out
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def profile_settlement(services: Any, products: list[Product], exp: dt.datetime, title: str, *,
                       analyze_between: bool = False, sketch: bool = False) -> str:
    """One settlement under cProfile and the statement timer: the statements by time, then the profile."""
    prof = cProfile.Profile()
    with statement_times(services) as stmts:
        fix_s, pay_s = settle(services, products, exp, analyze_between=analyze_between, sketch=sketch,
                              profile=prof)
    out = io.StringIO()
    out.write(f"== {title}: fix {fix_s:.3f} s, pay {pay_s:.3f} s (under the profiler)\n")
    by_stmt: dict[str, list[float]] = {}
    for seconds, sets, stmt in stmts:
        key = stmt[:150]
        acc = by_stmt.setdefault(key, [0.0, 0, 0])
        acc[0] += seconds
        acc[1] += 1
        acc[2] += sets
    listed = sum(v[0] for v in by_stmt.values())
    out.write(f"statements through SQLAlchemy: {listed:.3f} s; the rest (Python, driver-level SQL, commits) "
              f"{fix_s + pay_s - listed:.3f} s\n")
    for key, (seconds, calls, sets) in sorted(by_stmt.items(), key=lambda kv: -kv[1][0])[:12]:
        out.write(f"  {seconds:8.3f} s {calls:>3} x {sets:>6} rows  {key}\n")
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(12)
    return out.getvalue()


def check_bare(rows: list[Any], products: list[Product], expected: Expected) -> str:
    got: dict[str, list[Decimal]] = {}
    ccys: dict[str, set[str]] = {}
    for r in rows:
        sums = got.setdefault(r.product_id, [Decimal(0)] * 4)
        for i, v in enumerate((r.amount, r.yield_amt, r.markup_amt, r.orders)):
            sums[i] += Decimal(str(v))
        ccys.setdefault(r.product_id, set()).add(r.ccy)
    for p in products:
        k = p.product_id
        want = [expected.amount[k], expected.yield_amt[k], expected.markup[k], Decimal(expected.count[k])]
        if got.get(k) != want or ccys.get(k) != {p.pay_ccy}:
            raise AssertionError(f"bare statement, {k}: {got.get(k)} {ccys.get(k)}, expected {want} {p.pay_ccy}")
    if len(rows) != sum(len(u) for u in expected.uids.values()):
        raise AssertionError(f"bare statement: {len(rows)} rows")
    return f"{len(rows)} (product, uid) rows"


def check_settled(services: Any, products: list[Product], broker: str, expected: Expected) -> str:
    from sqlalchemy import func, select

    from stakehouse.db.tables import dcd_orders, journal_entries, ledger_accounts, postings
    from stakehouse.ledger.audit import money_sum

    c = dcd_orders.c
    out = []
    with services.db.read() as conn:
        left = conn.execute(select(func.count()).where(c.state != "settled")).scalar_one()
        if left:
            raise AssertionError(f"{left} orders not settled")
        markups: dict[str, Decimal] = {}
        for p in products:
            k = p.product_id
            n, amount, yld, markup, ccy_lo, ccy_hi = conn.execute(
                select(func.count(), money_sum(c.sett_amt), money_sum(c.yield_amt),
                       money_sum(c.markup_amt), func.min(c.sett_ccy), func.max(c.sett_ccy))
                .where(c.product_id == k)).one()
            got = (n, Decimal(amount), Decimal(yld), Decimal(markup), ccy_lo, ccy_hi)
            want = (expected.count[k], expected.amount[k], expected.yield_amt[k], expected.markup[k], p.pay_ccy,
                    p.pay_ccy)
            if got != want:
                raise AssertionError(f"{k}: settled {got}, expected {want}")
            users_n, users_sum = conn.execute(
                select(func.count(), money_sum(postings.c.amount))
                .select_from(postings.join(journal_entries, journal_entries.c.id == postings.c.entry_id)
                             .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id))
                .where(journal_entries.c.type == "dcd_settle", journal_entries.c.ref == k,  # its chunks' entries
                       ledger_accounts.c.uid.is_not(None), ledger_accounts.c.uid != broker)).one()
            if (users_n, Decimal(users_sum)) != (len(expected.uids[k]), expected.amount[k]):
                raise AssertionError(f"{k}: {users_n} user postings summing {users_sum}, expected "
                                     f"{len(expected.uids[k])} summing {expected.amount[k]}")
            markups[p.notional_ccy] = markups.get(p.notional_ccy, Decimal(0)) + expected.markup[k]
            out.append(f"{p.opt_type}: {n} orders paid {Decimal(amount)} {p.pay_ccy} to {users_n} users")
        for ccy, want in markups.items():
            have = conn.execute(select(ledger_accounts.c.available).where(
                ledger_accounts.c.owner == f"u:{broker}", ledger_accounts.c.acct_type == 6,
                ledger_accounts.c.ccy == ccy)).scalar_one()
            if Decimal(have) != want:
                raise AssertionError(f"broker markup {ccy}: {have}, expected {want}")
            out.append(f"markup {want} {ccy}")
    return "; ".join(out) + " = expected"


def run_case(backend: str, n: int, users: int, args: argparse.Namespace) -> Case:
    from stakehouse.dcd.rules import listing_boundary

    px = Decimal(args.sett_price)
    case = Case(backend, n, users, plain(px))
    ctx = sqlite_template() if backend == "sqlite" else postgres_backend(args.pg_url)
    with ctx as url:
        template = Template(backend, url)
        services = make_services(url)
        try:
            exp = listing_boundary(services.clock.now()) - dt.timedelta(days=1)  # 08:00 UTC yesterday
            products = products_at(exp, px)
            expected = Expected()
            started = time.perf_counter()
            broker = bulk_load(services, n, users, products, exp, px, expected)
            case.load_s = time.perf_counter() - started
            assert sum(expected.count.values()) == n
        finally:
            services.close()
        template.close_source()

        @contextlib.contextmanager
        def fresh() -> Iterator[Any]:
            started = time.perf_counter()
            with template.copy() as copy_url:
                case.copy_s = time.perf_counter() - started
                s = make_services(copy_url)
                try:
                    time_bare(s, exp, px)  # warm-up: the copy's pages into the caches
                    yield s
                finally:
                    s.close()

        for rep in range(args.repeat):
            with fresh() as s:
                with PeakMemory(False) as mem:
                    seconds, rows = time_bare(s, exp, px)
                case.bare_s.append(seconds)
                case.bare_rss_mb = max(case.bare_rss_mb, mem.rss_mb)
                bare_ok = check_bare(rows, products, expected)
                del rows
                memory = PeakMemory(False) if rep == 0 else None
                fix_s, pay_s = settle(s, products, exp, memory=memory)
                case.fix_s.append(fix_s)
                case.pay_s.append(pay_s)
                case.settle_s.append(fix_s + pay_s)
                if memory is not None:
                    case.settle_rss_mb = memory.rss_mb
                case.verified = f"bare: {bare_ok}; settled: {check_settled(s, products, broker, expected)}"
                if rep == 0:
                    report = s.audit()
                    bad = [f"{ck.name}: {ck.violations[:3]}" for ck in report.checks if not ck.ok]
                    if bad:
                        raise AssertionError(f"audit: {bad}")
                    case.audit = f"ok ({len(report.checks)} checks)"
            with fresh() as s:  # the bare write, on a copy of its own (rolled back)
                case.bare_write_s.append(time_bare_write(s, exp, px, n))
            if backend == "postgres":  # the real code again, the statistics refreshed between fix and pay
                with fresh() as s:
                    _, pay_s = settle(s, products, exp, analyze_between=True)
                    case.fresh_pay_s.append(pay_s)
                    check_settled(s, products, broker, expected)
            if args.sketch:
                with fresh() as s:
                    fix_s, pay_s = settle(s, products, exp, sketch=True)
                    case.sketch_fix_s.append(fix_s)
                    case.sketch_pay_s.append(pay_s)
                    case.sketch_settle_s.append(fix_s + pay_s)
                    check_settled(s, products, broker, expected)
                    if rep == 0:
                        report = s.audit()
                        if not report.ok:
                            raise AssertionError(f"audit after the set-based pay: {report.as_dict()}")
        with fresh() as s:  # one more settlement, untimed (tracing slows it)
            traced = PeakMemory(True)
            settle(s, products, exp, memory=traced)
            case.settle_traced_mb = traced.traced_mb or 0.0
        if args.sketch:
            with fresh() as s:
                traced = PeakMemory(True)
                settle(s, products, exp, sketch=True, memory=traced)
                case.sketch_traced_mb = traced.traced_mb or 0.0
        if args.profile:
            with fresh() as s:
                case.profile = profile_settlement(s, products, exp, "the real code")
            if backend == "postgres":
                with fresh() as s:
                    case.profile += profile_settlement(s, products, exp, "the real code, statistics refreshed "
                                                       "between fix and pay", analyze_between=True)
            if args.sketch:
                with fresh() as s:
                    case.profile += profile_settlement(s, products, exp, "the set-based pay", sketch=True)
    return case


# -- driver ----------------------------------------------------------------------------------------


def child(spec: str, args: argparse.Namespace) -> int:
    backend, n, users = spec.split(":")
    try:
        case = run_case(backend, int(n), int(users), args)
    except Exception as exc:  # reported by the parent
        import traceback

        traceback.print_exc()
        case = Case(backend, int(n), int(users), args.sett_price,
                    error=f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300])
    print("RESULT " + json.dumps(asdict(case)), flush=True)
    return 0


def fmt_table(cases: list[Case], full: int) -> str:
    head = (f"{'backend':<9} {'orders':>7} {'load s':>6} {'bare s':>7} {'fix s':>6} {'pay s':>7} {'settle/bare':>11}"
            f" | {'pay* s':>7} {'*/bare':>6} | {'sb pay s':>8} {'sb/bare':>7} | {'write s':>7} {'w/bare':>6} "
            f"{'sb/(b+w)':>8} | "
            f"{'RSS MB':>6} {'py MB':>6} {'sb py MB':>8}  goal")
    lines = [head, "-" * len(head)]
    for c in cases:
        if c.error:
            lines.append(f"{c.backend:<9} {c.orders:>7} failed: {c.error}")
            continue
        bare, fix = c.med("bare_s"), c.med("fix_s")
        ratio = c.med("settle_s") / bare
        goal = f"<= {GOAL:g}x: {'PASS' if ratio <= GOAL else 'FAIL'}" if c.orders == full else ""
        fresh = (f"{c.med('fresh_pay_s'):>7.3f} {(fix + c.med('fresh_pay_s')) / bare:>6.2f}" if c.fresh_pay_s
                 else f"{'-':>7} {'-':>6}")
        sb = (f"{c.med('sketch_pay_s'):>8.3f} {c.med('sketch_settle_s') / bare:>7.2f}"
              if c.sketch_settle_s else f"{'-':>8} {'-':>7}")
        sb_mb = f"{c.sketch_traced_mb:>8.1f}" if c.sketch_settle_s else f"{'-':>8}"
        write = c.med("bare_write_s")
        sb_bw = f"{c.med('sketch_settle_s') / (bare + write):>8.2f}" if c.sketch_settle_s else f"{'-':>8}"
        lines.append(f"{c.backend:<9} {c.orders:>7} {c.load_s:>6.1f} {bare:>7.3f} {fix:>6.3f} {c.med('pay_s'):>7.3f} "
                     f"{ratio:>11.2f} | {fresh} | {sb} | {write:>7.3f} {write / bare:>6.2f} {sb_bw} | "
                     f"{c.settle_rss_mb:>6.1f} {c.settle_traced_mb:>6.1f} {sb_mb}  {goal}")
    lines.append("settle = fix + pay of the real code (medians). *: the real pay after ANALYZE dcd_orders between fix "
                 "and pay (PostgreSQL). sb: the set-based pay proposed (SetBasedSettlement), after the real fix. "
                 "write: the bare write (one UPDATE settling every order, no ledger); b+w: bare + write. "
                 "RSS: peak RSS growth during the settlement; py: its Python peak (tracemalloc).")
    for backend in dict.fromkeys(c.backend for c in cases):
        done = sorted((c for c in cases if c.backend == backend and not c.error), key=lambda c: c.orders)
        if len(done) >= 2:
            lo, hi = done[0], done[-1]
            bare = hi.med("bare_s") / lo.med("bare_s")
            lines.append(f"{backend}: x{hi.orders / lo.orders:g} orders -> bare x{bare:.1f}"
                         f", settle x{hi.med('settle_s') / lo.med('settle_s'):.1f}, settle RSS {lo.settle_rss_mb:.1f}"
                         f" -> {hi.settle_rss_mb:.1f} MB, settle Python peak {lo.settle_traced_mb:.1f} -> "
                         f"{hi.settle_traced_mb:.1f} MB" + (f" (set-based: {lo.sketch_traced_mb:.1f} -> "
                                                             f"{hi.sketch_traced_mb:.1f} MB)" if hi.sketch_settle_s
                                                            else ""))
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--orders", type=int, default=100_000, help="orders expiring at the instant (default 100000)")
    p.add_argument("--small-orders", type=int, default=None,
                   help="a smaller case for the memory comparison (default orders / 10; 0: none)")
    p.add_argument("--users", type=int, default=10_000, help="sub-accounts holding them (default 10000)")
    p.add_argument("--sett-price", default="64000",
                   help="the index at expTime (default 64000: the call at 63000 exercised, the put at 57000 not)")
    p.add_argument("--db", default="both", choices=("sqlite", "postgres", "both"))
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""),
                   help="PostgreSQL URL of an existing database to create the bench databases from "
                        "(default: $STAKEHOUSE_TEST_PG_URL)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions, the median counts (default 3)")
    p.add_argument("--no-sketch", dest="sketch", action="store_false",
                   help="do not measure the set-based pay proposed (SetBasedSettlement)")
    p.add_argument("--profile", action="store_true", help="profile one more settlement (cProfile)")
    p.add_argument("--chunk-size", type=int, default=50_000,
                   help="users paid per transaction (the setting job_chunk_size; default 50000)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: this process runs one backend:orders:users case
    args = p.parse_args()
    if args.case:
        global CHUNK_SIZE
        CHUNK_SIZE = args.chunk_size
        return child(args.case, args)

    small = args.orders // 10 if args.small_orders is None else args.small_orders
    sizes = ([small] if small and small != args.orders else []) + [args.orders]
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in backends and not args.pg_url:
        print("postgres: skipped (no --pg-url and STAKEHOUSE_TEST_PG_URL is not set)", flush=True)
        backends.remove("postgres")
    print(f"cpus={os.cpu_count()} users={args.users} orders={sizes} backends={backends} repeat={args.repeat} "
          f"sett_price={args.sett_price}", flush=True)
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"warning: 1-minute load average is {load1:.2f} before starting; timings will be noisy", flush=True)
    cases: list[Case] = []
    for backend in backends:
        for n in sizes:
            print(f"{backend} {n} orders: running ...", flush=True)
            cmd = [sys.executable, __file__, "--case", f"{backend}:{n}:{args.users}", "--pg-url", args.pg_url,
                   "--repeat", str(args.repeat), "--sett-price", args.sett_price,
                   "--chunk-size", str(args.chunk_size)] + \
                ["--profile"] * args.profile + ["--no-sketch"] * (not args.sketch)
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                case = Case(backend, n, args.users, args.sett_price,
                            error=(out.stderr.strip().splitlines() or ["no result"])[-1][:300])
            else:
                case = Case(**json.loads(line[len("RESULT "):]))
            if case.error:
                print(f"  failed: {case.error}\n{out.stderr[-3000:]}", flush=True)
            else:
                print(f"  load {case.load_s:.1f}s, copy {case.copy_s:.1f}s; bare "
                      f"{' '.join(f'{s:.3f}' for s in case.bare_s)}; bare write "
                      f"{' '.join(f'{s:.3f}' for s in case.bare_write_s)}; fix "
                      f"{' '.join(f'{s:.3f}' for s in case.fix_s)}"
                      f"; pay {' '.join(f'{s:.3f}' for s in case.pay_s)}; pay* "
                      f"{' '.join(f'{s:.3f}' for s in case.fresh_pay_s) or '-'}; set-based fix, pay "
                      f"{' '.join(f'{s:.3f}' for s in case.sketch_fix_s) or '-'}, "
                      f"{' '.join(f'{s:.3f}' for s in case.sketch_pay_s) or '-'}\n  verified: {case.verified}; "
                      f"audit {case.audit}; bare RSS {case.bare_rss_mb:.1f} MB", flush=True)
                if case.profile:
                    print(case.profile, flush=True)
            cases.append(case)
    print()
    print(fmt_table(cases, args.orders))
    ok = all(not c.error for c in cases) and all(
        c.med("settle_s") <= GOAL * c.med("bare_s") for c in cases if c.orders == args.orders)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
