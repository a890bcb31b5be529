#!/usr/bin/env python3
"""Long fault run (issue 19, scope 5): signed traffic and daily runs while processes, connections and
Redis fail, then proof that nothing was lost, nothing doubled, and every reply was a protocol reply.

The suite has the short fault tests (``tests/e2e/``, ``tests/api/test_redis_outage.py``,
``tests/api/test_dropped_connections.py``, ``tests/service/test_clock_jumps.py``); this runs the same
kinds of fault for minutes, at random, together.

1. A fresh PostgreSQL database on the server of ``--pg-url``, a Redis of its own, and ``--servers``
   ``stakehouse serve`` processes (sandbox: each also runs the job loop) sharing both, daily runs in
   chunks of 4 users on 2 connections. The sandbox clock is frozen: days pass only when advanced.
2. ``--users`` users, each with USDT and ETH, 10 ETH staked (so every daily reward run has
   ``users / 4`` chunks), the ETH rate published.
3. ``--clients`` threads, each owning some users, send signed OKX requests to any live server:
   transfers of USDT between funding and trading (each with a ``clientId``, 70 %), balance reads
   (25 %) and small ETH staking redemptions (5 %). A transfer whose reply is lost (a transport error)
   is sent again with the same ``clientId`` until it has an answer, as a client of an exchange must;
   the client keeps its own model of every user's USDT from the answers.
4. Meanwhile, every ``--fault-every`` seconds, one fault at random:
   - ``kill``: SIGKILL a server (in the middle of requests), start a new one;
   - ``day``: advance the clock a day on one server (every daily run, chunked) and SIGKILL a server
     0-1 s later, often the one running the day, so that runs die half done;
   - ``pg``: ``pg_terminate_backend`` on up to 6 of the servers' PostgreSQL connections;
   - ``redis``: SIGKILL Redis, start it again 3 s later.
5. Then: every server alive, the clock advanced a second (the runs left half done finish), and:
   - every reply was a protocol reply (JSON with a ``code``) or a transport error: no other reply;
   - no run is left in progress, and the audit (ledger, staking, chunked runs, ...) is clean;
   - every user's USDT in funding and trading equals the client's model to the last unit: no
     transfer lost (acknowledged but missing) or doubled (a retry applied twice).

Exit status 1 on any violation.

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/faults.py [--minutes 10] [--servers 2] [--users 48] [--clients 6] [--fault-every 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.*, from the project root
sys.path.insert(0, str(ROOT / "bench"))

from tests.stack import start_server_process  # noqa: E402
from tests.support.external import PrivateRedis, create_database, drop_database  # noqa: E402

import balances as b  # noqa: E402
from stakehouse.db.engine import libpq_conninfo  # noqa: E402
from stakehouse.security import new_server_key  # noqa: E402

FUNDING, TRADING = "6", "18"
#: The sandbox clock when the run began.
START: list[dt.datetime] = []
#: Replies after which a transfer is sent again: unavailable, busy, rate-limited, a system error.
AGAIN = ("50001", "50013", "50011", "50026")
#: Settings of every server: chunked runs even with a few dozen users; limits out of the way.
SERVER_ENV = {"STAKEHOUSE_SANDBOX": "true", "STAKEHOUSE_JOB_CHUNK_SIZE": "4", "STAKEHOUSE_JOB_CONNECTIONS": "2",
              "STAKEHOUSE_RATE_LIMIT_FACTOR": "1000", "STAKEHOUSE_KEY_EXPIRY_ENABLED": "false",
              "STAKEHOUSE_JOB_POLL_SECONDS": "2"}


class Servers:
    """The live server processes; any thread may ask for one while faults replace them."""

    def __init__(self, db: str, key: str, redis_url: str, n: int) -> None:
        self.db, self.key = db, key
        self.env = {**SERVER_ENV, "STAKEHOUSE_REDIS_URL": redis_url, "STAKEHOUSE_ADMIN_TOKEN": b.ADMIN_TOKEN}
        self.lock = threading.Lock()
        self.live: list[tuple[subprocess.Popen[bytes], str]] = [self._start() for _ in range(n)]
        self.started = n

    def _start(self) -> tuple[subprocess.Popen[bytes], str]:
        return start_server_process(self.db, self.key, **self.env)

    def any(self) -> str:
        with self.lock:
            return random.choice(self.live)[1]

    def kill(self, base: str | None = None) -> str:
        """SIGKILL one server (``base``, or one at random), then start another in its place."""
        with self.lock:
            victim = next((s for s in self.live if s[1] == base), None) or random.choice(self.live)
            self.live.remove(victim)
        victim[0].send_signal(signal.SIGKILL)
        victim[0].wait()
        fresh = self._start()
        with self.lock:
            self.live.append(fresh)
            self.started += 1
        return victim[1]

    def stop(self) -> None:
        with self.lock:
            for proc, _ in self.live:
                proc.terminate()
            for proc, _ in self.live:
                proc.wait(timeout=30)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    replies: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)

    def count(self, what: str) -> None:
        with self.lock:
            self.replies[what] += 1

    def violation(self, text: str) -> None:
        with self.lock:
            if len(self.violations) < 50:
                self.violations.append(text)


@dataclass
class User:
    uid: str
    creds: dict[str, str]
    #: the client's model: USDT available in funding and trading
    usdt: dict[str, Decimal]
    sent: int = 0


def signed(servers: Servers, tally: Tally, user: User, method: str, path: str, body: dict[str, str] | None = None
           ) -> dict[str, Any] | None:
    """One signed request to a live server: the reply's JSON, or ``None`` on a transport error (the
    server died, a connection was reset). Anything else than a protocol reply is a violation."""
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    headers = {"Content-Type": "application/json", **b.okx_headers(user.creds, method, path, text)}
    base = servers.any()
    try:
        r = httpx.request(method, base + path, content=text or None, headers=headers, timeout=30)
    except httpx.TransportError:
        tally.count("transport error")
        return None
    try:
        reply = r.json()
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or "code" not in reply:
        tally.count("violation")
        tally.violation(f"{method} {path} -> HTTP {r.status_code}: {r.text[:200]!r}")
        return None
    tally.count("ok" if reply["code"] == "0" else f"code {reply['code']}")
    return reply


def transfer(servers: Servers, tally: Tally, user: User) -> None:
    """A USDT transfer with a clientId, sent until it has an answer; the model follows the answer."""
    frm, to = (FUNDING, TRADING) if random.random() < 0.5 else (TRADING, FUNDING)
    amt = Decimal(random.randint(1, 200_000)) / 100
    user.sent += 1
    client_id = f"f{user.uid[-8:]}n{user.sent}"
    body = {"ccy": "USDT", "amt": str(amt), "from": frm, "to": to, "clientId": client_id}
    while True:
        reply = signed(servers, tally, user, "POST", "/api/v5/asset/transfer", body)
        if reply is not None and reply["code"] not in AGAIN:
            break
        if reply is not None and reply["code"] == "50026":
            tally.violation(f"transfer {body}: a system error (HTTP 500) {reply}")
        # No answer, or "try again": the transfer may or may not have happened (a connection that
        # died in the commit). The same request again, same clientId: the first result if it did.
        time.sleep(0.2)
    if reply["code"] == "0":
        user.usdt[frm] -= amt
        user.usdt[to] += amt
    elif reply["code"] != "58116":  # the only refusal expected: more than the source account holds
        tally.violation(f"transfer {body} refused: {reply}")


def client(servers: Servers, tally: Tally, users: list[User], stop: threading.Event) -> None:
    while not stop.is_set():
        user = random.choice(users)
        r = random.random()
        if r < 0.70:
            transfer(servers, tally, user)
        elif r < 0.95:
            signed(servers, tally, user, "GET", "/api/v5/asset/balances?ccy=USDT")
        else:
            signed(servers, tally, user, "POST", "/api/v5/finance/staking-defi/eth/redeem", {"amt": "0.001"})


def terminate_connections(db: str, n: int) -> int:
    name = db.rsplit("/", 1)[1]
    with psycopg.connect(libpq_conninfo(db), autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                            "AND pid <> pg_backend_pid() ORDER BY random() LIMIT %s", (name, n)).fetchall()
    return len(rows)


def faults(servers: Servers, redis: PrivateRedis, db: str, tally: Tally, every: float, stop: threading.Event) -> None:
    while not stop.wait(random.uniform(0.5, 1.5) * every):
        kind = random.choice(["kill", "day", "day", "pg", "redis"])
        tally.faults[kind] += 1
        if kind == "kill":
            servers.kill()
        elif kind == "day":
            base = servers.any()
            answer: list[Any] = []
            thread = threading.Thread(target=lambda url, out: out.append(advance(url, {"days": 1})),
                                      args=(base, answer), daemon=True)
            thread.start()
            time.sleep(random.uniform(0.0, 1.0))
            killed = servers.kill(base if random.random() < 0.7 else None)
            thread.join(60)
            if killed == base and answer and isinstance(answer[0], Exception):
                tally.faults["day killed before it answered"] += 1
        elif kind == "pg":
            tally.faults["pg connections"] += terminate_connections(db, 6)
        else:
            redis.stop()
            time.sleep(3)
            redis.start()


def advance(base: str, body: dict[str, int]) -> Any:
    try:
        return httpx.post(base + "/admin/clock/advance", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {b.ADMIN_TOKEN}"}).json()
    except httpx.TransportError as exc:
        return exc


def admin(servers: Servers, method: str, path: str, body: object | None = None) -> Any:
    for _ in range(20):
        try:
            return b.http(method, servers.any() + path, body, {"Authorization": f"Bearer {b.ADMIN_TOKEN}"})
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{method} {path}: no server answers")


def setup_users(servers: Servers, n: int) -> list[User]:
    base = servers.any()
    clock = b.admin(base, "POST", "/admin/clock/freeze")
    START.append(dt.datetime.fromisoformat(str(clock["now"])))
    day = str(clock["now"])[:10]  # the UTC date; the rate is carried forward from it
    b.admin(base, "PUT", f"/admin/staking/products/ETH/rates/{day}", {"rate": "0.05"})
    users = []
    for _ in range(n):
        u = b.admin(base, "POST", "/admin/users", {"env": "live", "kycLevel": 2, "acceptTerms": ["ETH"]})
        uid = str(u["uid"])
        key = b.admin(base, "POST", f"/admin/users/{uid}/api-keys", {"perms": ["read_only", "trade"]})
        creds = {k: str(key[k]) for k in ("apiKey", "secretKey", "passphrase")}
        for ccy, amt in (("USDT", "100000"), ("ETH", "100")):
            b.admin(base, "POST", f"/admin/users/{uid}/deposits", {"ccy": ccy, "amt": amt})
        user = User(uid, creds, {FUNDING: Decimal(100000), TRADING: Decimal(0)})
        reply = signed(servers, Tally(), user, "POST", "/api/v5/finance/staking-defi/eth/purchase", {"amt": "10"})
        assert reply is not None and reply["code"] == "0", reply
        users.append(user)
    return users


def check(servers: Servers, users: list[User], tally: Tally) -> dict[str, Any]:
    ran = advance(servers.any(), {"seconds": 1})  # what the killed runs left undone
    if isinstance(ran, Exception):
        tally.violation(f"the final advance failed: {ran!r}")
    running = admin(servers, "GET", "/admin/jobs/runs?running=true&limit=100")
    if running:
        tally.violation(f"runs still in progress: {running}")
    audit = admin(servers, "GET", "/admin/audit")
    if not audit.get("ok"):
        tally.violation(f"audit: {json.dumps(audit)[:2000]}")
    mismatched = 0
    for user in users:
        rows = admin(servers, "GET", f"/admin/users/{user.uid}/balances")
        got = {r["acctType"]: Decimal(r["available"]) for r in rows if r["ccy"] == "USDT"}
        want = {k: v for k, v in user.usdt.items() if v}
        if {k: v for k, v in got.items() if v} != want:
            mismatched += 1
            tally.violation(f"user {user.uid} USDT: server {got}, client's model {want}")
    runs = admin(servers, "GET", "/admin/jobs/runs?limit=1000")
    clock = admin(servers, "GET", "/admin/clock")
    return {"days passed": (dt.datetime.fromisoformat(clock["now"]) - START[0]).days, "audit checks":
            len(audit.get("checks", [])), "users mismatched": mismatched,
            "runs of several chunks": sum(1 for r in runs if r["chunksPlanned"] > 1),
            "their chunks": sum(r["chunksPlanned"] for r in runs if r["chunksPlanned"] > 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--users", type=int, default=48)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--fault-every", type=float, default=5.0, help="seconds between faults, on average")
    ap.add_argument("--seed", type=int, default=None, help="seed of the client's and the faults' choices")
    ap.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""))
    args = ap.parse_args()
    if not args.pg_url:
        ap.error("a PostgreSQL server is needed: --pg-url or STAKEHOUSE_TEST_PG_URL")
    random.seed(args.seed)
    name = f"faults_{os.getpid()}"
    db = create_database(args.pg_url, name)
    tally = Tally()
    started = time.monotonic()
    with PrivateRedis() as redis:
        servers = Servers(db, new_server_key(), redis.url, args.servers)
        try:
            users = setup_users(servers, args.users)
            print(f"{args.servers} servers, {len(users)} users, {args.clients} clients, a fault every "
                  f"~{args.fault_every:g} s for {args.minutes:g} min", flush=True)
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(servers, tally, users[i::args.clients], stop))
                       for i in range(args.clients)]
            threads.append(threading.Thread(target=faults, args=(servers, redis, db, tally, args.fault_every, stop)))
            for t in threads:
                t.start()
            deadline = time.monotonic() + args.minutes * 60
            while time.monotonic() < deadline:
                time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
                print(f"  {(time.monotonic() - started) / 60:5.1f} min: replies {dict(tally.replies)}, "
                      f"faults {dict(tally.faults)}", flush=True)
            stop.set()
            for t in threads:
                t.join(120)
            figures = check(servers, users, tally)
        finally:
            servers.stop()
    drop_database(args.pg_url, name)
    print(f"\nreplies: {dict(tally.replies)}")
    print(f"faults: {dict(tally.faults)}; server processes started: {servers.started}")
    print(f"after: {figures}")
    print(f"violations: {len(tally.violations)}")
    for v in tally.violations:
        print(f"  {v}")
    return 1 if tally.violations else 0


if __name__ == "__main__":
    sys.exit(main())
