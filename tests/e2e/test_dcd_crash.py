"""Server processes killed (SIGKILL) between a DCD product's ``expTime`` and its ``settTime``, and
again while the payment runs, then restarted: every order is paid exactly once, nothing skipped,
nothing repeated (issue 16), on SQLite and PostgreSQL, with no hook in the code.

1. An in-process stack lists the BTC/USDT products (one 7-day tenor, strikes at +-5 %: a call at
   63 000 and a put at 57 000) and takes orders from three sub-accounts of an ND broker, some with
   a markup; BTC is then held at 64 000: the call is exercised, the put is not (both pay USDT).
2. A server process moves the clock to ``expTime`` + 1 h: every order is ``pending_settled`` at
   64 000, nothing is paid. The process is killed while idle.
3. Another process moves the clock a day on and is killed during the payment:
   - On PostgreSQL it is stopped at a known point: the test holds a row lock on the book's BTC
     account (``s:dcd_book``), which only the call's payment locks (its brokers' markups, after the
     users' credits and the orders' amounts are written). The put's product is paid first (product
     ids in order) and committed; once PostgreSQL shows the call's payment waiting, it is killed.
   - On SQLite (one writer at a time: no outside session can hold it half-way) the process is
     killed as soon as the put's entry shows, i.e. while (or right before) it pays the call.
   Either way each product is paid wholly or not at all (one transaction per product).
4. A third process moves the clock past ``settTime``: every order ``settled`` once, one entry
   ``dcd:settle:<productId>`` per product, each user paid exactly the rule's payout (computed here
   from ``dcd.md`` §1), the broker's markups once, the audit clean. Further advances change nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import psycopg
from sqlalchemy import select

from stakehouse.db.engine import libpq_conninfo
from stakehouse.db.tables import currencies, dcd_orders, journal_entries, ledger_accounts, postings
from tests.api.test_broker_api import make_broker
from tests.api.test_dcd import dcd, funded_sub, hold, products, setup
from tests.e2e.test_rebate_crash import holds, waiting_for_row
from tests.e2e.test_staking_crash import _advance_ignoring_errors
from tests.stack import ADMIN_TOKEN, Creds, Stack, start_server_process, start_stack

D = Decimal
SETT_PRICE = D(64000)  # call at 63 000 exercised (paid in USDT), put at 57 000 not (its USDT back)
#: Per sub-account, its orders: (optType, notional, markUp or "" for none).
ORDERS = [
    [("C", "0.5", "0.1"), ("P", "10000", "")],
    [("C", "0.1234", ""), ("P", "2500", "0.05")],
    [("C", "0.0777", "0.2"), ("C", "0.01", ""), ("P", "777", "")],
]
Conn = psycopg.Connection[tuple[Any, ...]]


def down(x: Decimal, scale: int) -> Decimal:
    return x.quantize(D(1).scaleb(-scale), rounding=ROUND_DOWN)


def payout(opt_type: str, notional: Decimal, abs_yield: Decimal, stk: Decimal, px: Decimal,
           scales: dict[str, int]) -> tuple[Decimal, str]:
    """``dcd.md`` §1, written out again here: what one order of BTC/USDT pays, and in what."""
    grown = notional * (1 + abs_yield)
    if opt_type == "C":
        return (down(grown * stk, scales["USDT"]), "USDT") if px >= stk else (down(grown, scales["BTC"]), "BTC")
    return (down(grown / stk, scales["BTC"]), "BTC") if px <= stk else (down(grown, scales["USDT"]), "USDT")


def admin(base: str, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, base + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def settlement_runs(reply: dict[str, Any]) -> int:
    """How many orders the ``dcd_settlement`` source fixed or paid in one clock advance."""
    return sum(int(j["result"].split()[0]) for j in reply["jobsRun"] if j["job"] == "dcd_settlement")


def orders_of(stack: Stack) -> dict[int, Any]:
    with stack.services.db.read() as conn:
        return {r.ord_id: r for r in conn.execute(select(dcd_orders)).all()}


def settle_entries(stack: Stack) -> list[tuple[int, str, str, str]]:
    j = journal_entries.c
    with stack.services.db.read() as conn:
        return [tuple(r) for r in conn.execute(select(j.id, j.type, j.ref, j.idempotency_key)
                                               .where(j.type.like("dcd%settle%")).order_by(j.id)).all()]


def book_legs(stack: Stack) -> int:
    with stack.services.db.read() as conn:
        return len(conn.execute(select(postings.c.id)
                                .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
                                .where(ledger_accounts.c.owner == "s:dcd_book")).all())


def snapshot(stack: Stack, uids: list[str]) -> tuple[Any, ...]:
    """Everything a settlement writes: the orders, the entries, the book's postings, the balances."""
    return ({k: tuple(v) for k, v in orders_of(stack).items()}, settle_entries(stack), book_legs(stack),
            {u: stack.balances(u) for u in uids})


def funding(balances: dict[tuple[str, str], Decimal], ccy: str) -> Decimal:
    return balances.get(("6", ccy), D(0))


def check_each_product_wholly_or_not(stack: Stack, expected: dict[int, dict[str, Any]], base: dict[str, Any],
                                     broker: str) -> set[str]:
    """Every product is either paid entirely (all its orders settled with the rule's amounts, its
    one entry, its users and broker credited) or not at all (all pending, nothing written, nobody
    credited); the balances are the opening ones plus exactly the paid products' amounts.
    Returns the paid products."""
    rows = orders_of(stack)
    assert set(rows) == set(expected)
    entries = {key: entry_id for entry_id, _, _, key in settle_entries(stack)}
    assert len(entries) == len(settle_entries(stack))
    paid: set[str] = set()
    for pid in {e["productId"] for e in expected.values()}:
        mine = [rows[o] for o in expected if expected[o]["productId"] == pid]
        states = {r.state for r in mine}
        assert len(states) == 1, (pid, states)  # never part of a product
        if states == {"settled"}:
            paid.add(pid)
            assert {r.settle_entry_id for r in mine} == {entries[f"dcd:settle:{pid}"]}
        else:
            assert states == {"pending_settled"}, (pid, states)
            assert f"dcd:settle:{pid}" not in entries
            assert all(r.sett_amt is None and r.markup_amt is None and r.settle_entry_id is None for r in mine)
        assert all(r.sett_price == SETT_PRICE for r in mine)
    assert set(entries) == {f"dcd:settle:{p}" for p in paid}
    want: dict[tuple[str, str], Decimal] = {}
    for o, e in expected.items():
        if e["productId"] not in paid:
            continue
        r = rows[o]
        assert (r.sett_amt, r.sett_ccy, r.markup_amt) == (e["amount"], e["ccy"], e["markup"]), (o, r, e)
        want[(e["uid"], e["ccy"])] = want.get((e["uid"], e["ccy"]), D(0)) + e["amount"]
        want[(broker, e["notionalCcy"])] = want.get((broker, e["notionalCcy"]), D(0)) + e["markup"]
    for uid, before in base.items():
        now = stack.balances(uid)
        for ccy in ("BTC", "USDT"):
            assert funding(now, ccy) == funding(before, ccy) + want.get((uid, ccy), D(0)), (uid, ccy)
        assert {k: v for k, v in now.items() if k[0] != "6"} == {k: v for k, v in before.items() if k[0] != "6"}
    return paid


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_crash_between_expiry_and_settlement_neither_double_pays_nor_skips(
        backend: str, make_db: Callable[[str], str]) -> None:
    db = make_db(backend)
    stack = start_stack(db)
    svc = stack.services
    procs: list[subprocess.Popen[bytes]] = []
    observer: Conn | None = None
    locker: Conn | None = None
    try:
        # 1. The listing and the orders, through the in-process stack's API.
        setup(stack)  # frozen clock, BTC held at 60 000, BTC/USDT: one 7-day tenor at +-5 %, tick 100, listed
        listed = {"C": products(stack, "C"), "P": products(stack, "P")}
        assert [p["stk"] for p in listed["C"]] == ["63000"] and [p["stk"] for p in listed["P"]] == ["57000"]
        exp = dt.datetime.fromtimestamp(int(listed["C"][0]["expTime"]) / 1000, dt.UTC)
        sett = dt.datetime.fromtimestamp(int(listed["C"][0]["settTime"]) / 1000, dt.UTC)
        assert sett - exp == dt.timedelta(hours=2)
        assert [p["expTime"] for p in listed["P"]] == [listed["C"][0]["expTime"]]
        with svc.db.read() as conn:
            scales = {r.ccy: r.scale for r in conn.execute(select(currencies)).all() if r.ccy in ("BTC", "USDT")}
        assert set(scales) == {"BTC", "USDT"}  # each paid amount is rounded down to its currency's scale

        broker = make_broker(stack, funds={"USDT": "1"})
        users: list[Creds] = [funded_sub(stack, broker, BTC="1", USDT="20000") for _ in ORDERS]
        expected: dict[int, dict[str, Any]] = {}
        for user, plan in zip(users, ORDERS, strict=True):
            for opt_type, notional, markup in plan:
                product = listed[opt_type][0]
                ccy = "BTC" if opt_type == "C" else "USDT"
                params = {"productId": product["productId"], "notional": notional, "notionalCcy": ccy, "tag": "t"}
                if markup:
                    params["markUp"] = markup
                got = dcd(stack, user, "POST", "quote", params)
                assert got["code"] == "0", got
                q = got["data"][0]
                assert q["markUp"] == markup
                placed = dcd(stack, user, "POST", "order", {"quoteId": q["quoteId"]})
                assert placed["code"] == "0", placed
                amount, paid_ccy = payout(opt_type, D(notional), D(q["absYield"]), D(product["stk"]), SETT_PRICE,
                                          scales)
                expected[int(placed["data"]["ordId"])] = {
                    "uid": user.uid, "productId": product["productId"], "notional": D(notional), "notionalCcy": ccy,
                    "absYield": D(q["absYield"]), "indicative": D(product["absYield"]), "amount": amount,
                    "ccy": paid_ccy}
        rows = orders_of(stack)
        for o, e in expected.items():
            # The broker's share was fixed with the order: notional x markup yield, rounded down
            # to the notional currency; with the user's yield it makes the indicative (no markup) one.
            r = rows[o]
            assert (r.state, r.uid, r.product_id, r.notional, r.abs_yield) == (
                "live", e["uid"], e["productId"], e["notional"], e["absYield"])
            assert abs(e["absYield"] + r.markup_yield - e["indicative"]) <= D("0.00000002"), (o, r.markup_yield)
            e["markup"] = down(e["notional"] * r.markup_yield, scales[e["notionalCcy"]])
            assert (e["markup"] > 0) == (r.markup_yield > 0)
        assert sum(1 for e in expected.values() if e["markup"] > 0) == 3
        assert {e["ccy"] for e in expected.values()} == {"USDT"}
        raw = [e["notional"] * (1 + e["absYield"]) * (63000 if e["notionalCcy"] == "BTC" else 1)
               for e in expected.values()]
        assert any(x != down(x, scales["USDT"]) for x in raw)  # the rounding is exercised
        hold(stack, "BTC-USDT", str(SETT_PRICE))
        stack.audit_ok()
        watched = [u.uid for u in users] + [broker.uid]
        base = {uid: stack.balances(uid) for uid in watched}
        opened = snapshot(stack, watched)
        assert opened[1] == []

        # 2. A server process moves the clock into the gap: fixed, not paid; then it dies idle.
        proc, url = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")
        procs.append(proc)
        moved = admin(url, "POST", "/admin/clock/advance", json={"to": (exp + dt.timedelta(hours=1)).isoformat()})
        assert settlement_runs(moved) == len(expected), moved["jobsRun"]
        fixed = orders_of(stack)
        for r in fixed.values():
            assert (r.state, r.sett_price, r.sett_amt, r.settle_entry_id, r.settled_at) == (
                "pending_settled", SETT_PRICE, None, None, None), r
            assert r.updated_at == exp
        assert settle_entries(stack) == [] and book_legs(stack) == opened[2]
        assert {uid: stack.balances(uid) for uid in watched} == base
        gap = snapshot(stack, watched)
        kill(proc)
        assert snapshot(stack, watched) == gap
        assert check_each_product_wholly_or_not(stack, expected, base, broker.uid) == set()
        stack.audit_ok()

        # 3. Another process is killed while it pays.
        proc, url = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")
        procs.append(proc)
        call_pid, put_pid = listed["C"][0]["productId"], listed["P"][0]["productId"]
        advance = threading.Thread(target=_advance_ignoring_errors, args=(url,), daemon=True)  # one day on
        if backend == "postgres":
            observer = psycopg.connect(libpq_conninfo(db), autocommit=True)
            locker = psycopg.connect(libpq_conninfo(db), autocommit=False)
            locked = locker.execute("SELECT id FROM ledger_accounts WHERE owner = 's:dcd_book' AND ccy = 'BTC' "
                                    "FOR UPDATE").fetchall()
            assert len(locked) == 1  # the calls' notionals went there
            advance.start()
            deadline = time.monotonic() + 60
            while not (waiting := waiting_for_row(observer)):
                assert time.monotonic() < deadline, "the payment never reached the locked account"
                assert advance.is_alive(), "the clock advance returned before the payment reached the locked account"
                time.sleep(0.05)
            [run_pid] = waiting
            # Half-way: the put's product is paid and committed; the call's payment has written its
            # orders' amounts, the users' credits and its entry, none of it visible.
            assert holds(observer, run_pid, "dcd_orders") and holds(observer, run_pid, "journal_entries")
            assert check_each_product_wholly_or_not(stack, expected, base, broker.uid) == {put_pid}
            kill(proc)
            locker.rollback()
            deadline = time.monotonic() + 30
            gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s"
            while observer.execute(gone, (run_pid,)).fetchone() != (True,):
                assert time.monotonic() < deadline, "the killed payment's backend did not end"
                time.sleep(0.05)
        else:
            advance.start()
            deadline = time.monotonic() + 60
            while not settle_entries(stack) and advance.is_alive():
                assert time.monotonic() < deadline, "the payment never started"
                time.sleep(0.002)
            kill(proc)
        advance.join(timeout=30)
        paid = check_each_product_wholly_or_not(stack, expected, base, broker.uid)
        if backend == "postgres":
            assert paid == {put_pid}
        print(f"killed during the payment: products paid {sorted(paid)}, not paid {sorted({call_pid, put_pid} - paid)}")
        stack.audit_ok()

        # 4. The restart pays what is left, once.
        proc, url = start_server_process(db, svc.settings.server_key, STAKEHOUSE_JOB_POLL_SECONDS="3600")
        procs.append(proc)
        moved = admin(url, "POST", "/admin/clock/advance", json={"days": 1})
        left = sum(1 for e in expected.values() if e["productId"] not in paid)
        assert settlement_runs(moved) == left, moved["jobsRun"]
        assert check_each_product_wholly_or_not(stack, expected, base, broker.uid) == {call_pid, put_pid}
        entries = settle_entries(stack)
        assert sorted((t, ref, key) for _, t, ref, key in entries) == [
            ("dcd_settle", p, f"dcd:settle:{p}") for p in sorted((call_pid, put_pid))]
        final = orders_of(stack)
        for o, e in expected.items():
            r = final[o]
            entry_id = next(i for i, _, ref, _ in entries if ref == e["productId"])
            assert (r.state, r.settle_entry_id, r.settled_at) == ("settled", entry_id, sett), r
            assert r.yield_amt == down(e["notional"] * e["absYield"], scales[e["notionalCcy"]])
        # Each user's funding account got the rule's payouts, the broker its markups, once.
        for user in users:
            mine = [e for e in expected.values() if e["uid"] == user.uid]
            bal = stack.balances(user.uid)
            for ccy in ("BTC", "USDT"):
                assert funding(bal, ccy) == funding(base[user.uid], ccy) + sum(
                    (e["amount"] for e in mine if e["ccy"] == ccy), D(0)), (user.uid, ccy)
        bal = stack.balances(broker.uid)
        for ccy in ("BTC", "USDT"):
            markups = sum((e["markup"] for e in expected.values() if e["notionalCcy"] == ccy), D(0))
            assert markups > 0 and funding(bal, ccy) == funding(base[broker.uid], ccy) + markups, ccy
        # The book paid out exactly once per product: its legs are the two entries' counter legs.
        for entry_id, _, ref, _ in entries:
            with svc.db.read() as conn:
                legs = conn.execute(select(ledger_accounts.c.owner, ledger_accounts.c.ccy, postings.c.amount)
                                    .join(ledger_accounts, ledger_accounts.c.id == postings.c.account_id)
                                    .where(postings.c.entry_id == entry_id)).all()
            mine = [e for e in expected.values() if e["productId"] == ref]
            out = {ccy: -sum((a for o, c, a in legs if o == "s:dcd_book" and c == ccy), D(0))
                   for ccy in ("BTC", "USDT")}
            assert out["USDT"] == sum((e["amount"] for e in mine), D(0)) + sum(
                (e["markup"] for e in mine if e["notionalCcy"] == "USDT"), D(0)), (ref, legs)
            assert out["BTC"] == sum((e["markup"] for e in mine if e["notionalCcy"] == "BTC"), D(0)), (ref, legs)
            assert sum((a for _, _, a in legs), D(0)) == 0
        assert admin(url, "GET", "/admin/audit")["ok"] is True
        stack.audit_ok()

        # Again: the server process, then the in-process runner; nothing moves.
        done = snapshot(stack, watched)
        assert settlement_runs(admin(url, "POST", "/admin/clock/advance", json={"days": 1})) == 0
        assert settlement_runs(admin(url, "POST", "/admin/clock/advance", json={"seconds": 1})) == 0
        proc.terminate()
        proc.wait(timeout=10)
        assert [r for r in svc.runner.run_due() if r.job == "dcd_settlement"] == []
        assert snapshot(stack, watched) == done
        stack.audit_ok()
    finally:
        for p in procs:
            if p.poll() is None:  # a failure above: leave no server behind
                p.kill()
                p.wait(timeout=10)
        for c in (locker, observer):
            if c is not None:
                c.close()
        stack.stop()
