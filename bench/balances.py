#!/usr/bin/env python3
"""Benchmark: authenticated ``GET /api/v5/asset/balances`` versus ``GET /bare``.

Both endpoints are measured against the SAME ``stakehouse serve --workers 1`` process, once per
database backend (SQLite, PostgreSQL).  The load generator runs in a separate process (``wrk``
with a small Lua script if installed, else this script re-invoked in ``--client`` mode with
aiohttp), so the client's CPU is not the server's -- but it still shares the machine.

Usage (from the project root)::

    .venv/bin/python bench/balances.py [--duration 5] [--warmup 1] [--connections 16]
        [--backends sqlite,postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--client auto|wrk|python] [--users 16]

Goal: authenticated requests/s >= 50 % of bare requests/s.

The signed requests rotate over ``--users`` users (one key each), so the server cannot answer
them all from one user's row: concurrent balance reads are coalesced into one statement per
batch (``stakehouse.db.batch``), and several users keep that batch honest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BALANCES = "/api/v5/asset/balances"
BARE = "/bare"
ADMIN_TOKEN = "bench-admin-" + secrets.token_hex(8)


# -- signing --------------------------------------------------------------------------------------


def okx_timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def okx_headers(key: dict[str, str], method: str, path: str, body: str = "",
                at: dt.datetime | None = None) -> dict[str, str]:
    ts = okx_timestamp(at or dt.datetime.now(dt.UTC))
    mac = hmac.new(key["secretKey"].encode(), (ts + method + path + body).encode(), hashlib.sha256)
    return {"OK-ACCESS-KEY": key["apiKey"], "OK-ACCESS-SIGN": base64.b64encode(mac.digest()).decode(),
            "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-PASSPHRASE": key["passphrase"]}


# -- small HTTP helpers (setup only) ---------------------------------------------------------------


def http(method: str, url: str, body: object | None = None, headers: dict[str, str] | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def admin(base: str, method: str, path: str, body: object | None = None) -> dict[str, object]:
    try:
        out = http(method, base + path, body, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    except urllib.error.HTTPError as exc:  # say which call failed, and why, before giving up
        raise RuntimeError(f"{method} {path} -> {exc.code}: {exc.read()[:300]!r}") from None
    assert isinstance(out, dict), out
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- backends --------------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_backend() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="stakehouse-bench-") as tmp:
        yield f"sqlite:///{tmp}/bench.db"


@contextlib.contextmanager
def postgres_backend(url: str) -> Iterator[str]:
    import psycopg  # imported lazily: only needed for this backend

    scheme, rest = url.split("://", 1)
    libpq_url = "postgresql://" + rest
    name = "stakehouse_bench_" + secrets.token_hex(4)
    with psycopg.connect(libpq_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = rest.rpartition("/")
    try:
        yield f"{scheme}://{head}/{name}"
    finally:
        with psycopg.connect(libpq_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- server ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(db_url: str, port: int, *, rate_limit_factor: str = "100000", workers: int = 1,
           env_extra: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``stakehouse serve --workers N`` on ``db_url`` (extra ``STAKEHOUSE_*`` settings in
    ``env_extra``), until it answers ``/healthz``; stopped on leaving."""
    sys.path.insert(0, str(ROOT / "src"))
    from stakehouse.security import new_server_key

    env = {**os.environ, "STAKEHOUSE_ADMIN_TOKEN": ADMIN_TOKEN, "STAKEHOUSE_SERVER_KEY": new_server_key(),
           "STAKEHOUSE_RATE_LIMIT_FACTOR": rate_limit_factor, "STAKEHOUSE_LOG_LEVEL": "WARNING", **(env_extra or {})}
    exe = ROOT / ".venv" / "bin" / "stakehouse"
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(exe), "serve", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
                             "--db", db_url], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read().decode(errors='replace')}")
            try:
                http("GET", base + "/healthz")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not become healthy within 60 s") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def setup_user(base: str) -> dict[str, str]:
    user = admin(base, "POST", "/admin/users", {"env": "live", "kycLevel": 2})
    uid = str(user["uid"])
    key = admin(base, "POST", f"/admin/users/{uid}/api-keys", {"perms": ["read_only", "trade"]})
    for ccy, amt in (("USDT", "1000"), ("BTC", "0.5"), ("ETH", "3")):
        admin(base, "POST", f"/admin/users/{uid}/deposits", {"ccy": ccy, "amt": amt})
    creds = {k: str(key[k]) for k in ("apiKey", "secretKey", "passphrase")}
    # Sanity check (and first touch of the key): one signed request must succeed.
    reply = http("GET", base + BALANCES, headers=okx_headers(creds, "GET", BALANCES))
    assert isinstance(reply, dict) and reply.get("code") == "0" and reply.get("data"), reply
    return creds


# -- load generators ------------------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# wrk has no HMAC, so the signed requests are prepared here: one per wall-clock second (the
# server allows 30 s of skew and keeps no replay cache, so it does the same work -- key lookup,
# secret decryption, passphrase check, HMAC -- for every request).  ``request()`` just picks
# the request for the current second.  ``response()`` counts replies whose code is not "0".
WRK_LUA = r"""
local reqs = {}
local fallback = nil
local turn = 0
%(entries)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) errors = 0; responses = 0 end
function request()
  local batch = reqs[os.time()]
  if batch == nil then batch = fallback end
  turn = turn %% #batch + 1
  return batch[turn]
end
function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 or not string.find(body, '"code":"0"', 1, true) then errors = errors + 1 end
end
function done(summary, latency, requests)
  local errs, resps = 0, 0
  for _, t in ipairs(threads) do errs = errs + t:get("errors"); resps = resps + t:get("responses") end
  local s = summary.errors
  local sock = s.connect + s.read + s.write + s.timeout
  io.write(string.format('\nRESULT {"requests": %%d, "errors": %%d, "socket_errors": %%d, "us": %%d, '
    .. '"p50": %%d, "p99": %%d}\n', summary.requests, errs, sock, summary.duration,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


def signed_script(host: str, method: str, path: str, users: list[dict[str, str]], seconds: int,
                  bodies: tuple[str, ...] = ("",)) -> str:
    """The Lua script: for each second of the run, ``method path`` signed by each user (an
    unsigned request without users), once per body in ``bodies`` (JSON; "" for none)."""
    lines: list[str] = []
    now = int(time.time())
    for sec in range(now - 5, now + seconds + 10):
        batch = []
        at = dt.datetime.fromtimestamp(sec, dt.UTC)
        for creds in users or [{}]:
            for body in bodies:
                headers = {"Host": host}
                if creds:
                    headers.update(okx_headers(creds, method, path, body, at=at))
                if body:
                    headers["Content-Type"] = "application/json"
                hdr = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
                arg = f", {json.dumps(body)}" if body else ""
                batch.append(f'wrk.format("{method}", "{path}", {{{hdr}}}{arg})')
        lines.append(f"reqs[{sec}] = {{{', '.join(batch)}}}")
    lines.append(f"fallback = reqs[{now}]")
    return WRK_LUA % {"entries": "\n".join(lines)}


def wrk_script(host: str, path: str, users: list[dict[str, str]], seconds: int) -> str:
    return signed_script(host, "GET", path, users, seconds)


def run_wrk(base: str, path: str, users: list[dict[str, str]], args: argparse.Namespace, *,
            lua: Callable[[str, int], str] | None = None) -> Result:
    """wrk against ``base + path``: a warm-up, then the measured run. ``lua(host, seconds)`` builds
    the script (default: signed GETs of ``path`` rotating over ``users``)."""
    total = args.warmup + args.duration
    host = base.split("://", 1)[1]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua(host, int(total) + 5) if lua else wrk_script(host, path, users, int(total) + 5))
        script = f.name
    try:
        def wrk(seconds: float) -> dict[str, int]:
            out = subprocess.run(
                ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{max(1, round(seconds))}s",
                 "--timeout", "10s", "-s", script, base + path],
                capture_output=True, text=True, check=True)
            line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
            parsed: dict[str, int] = json.loads(line[len("RESULT "):])
            return parsed

        if args.warmup > 0:
            wrk(args.warmup)
        r = wrk(args.duration)
        return Result(r["requests"], r["errors"] + r["socket_errors"], r["us"] / 1e6)
    finally:
        os.unlink(script)


async def _client_main(base: str, path: str, users: list[dict[str, str]], connections: int, warmup: float,
                       duration: float) -> Result:
    import aiohttp  # only the fallback client needs it

    counts = {"ok": 0, "err": 0}
    measuring = False
    stop = False

    async def worker(session: aiohttp.ClientSession, creds: dict[str, str] | None) -> None:
        while not stop:
            headers = okx_headers(creds, "GET", path) if creds else None
            try:
                async with session.get(base + path, headers=headers) as resp:
                    body = await resp.read()
                    ok = resp.status == 200 and b'"code":"0"' in body
            except aiohttp.ClientError:
                ok = False
            if measuring:
                counts["ok" if ok else "err"] += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(worker(session, users[i % len(users)] if users else None))
                 for i in range(connections)]
        await asyncio.sleep(warmup)
        measuring = True
        started = time.perf_counter()
        await asyncio.sleep(duration)
        measuring = False
        elapsed = time.perf_counter() - started
        stop = True
        await asyncio.gather(*tasks)
    return Result(counts["ok"] + counts["err"], counts["err"], elapsed)


def run_python(base: str, path: str, users: list[dict[str, str]], args: argparse.Namespace) -> Result:
    spec = json.dumps({"base": base, "path": path, "users": users, "connections": args.connections,
                       "warmup": args.warmup, "duration": args.duration})
    out = subprocess.run([sys.executable, __file__, "--client", "python", "--client-spec", spec],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return Result(r["requests"], r["errors"], r["seconds"])


# -- main -----------------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    bare: Result | None = None
    auth: Result | None = None
    note: str = ""


def bench_backend(name: str, db_url: str, args: argparse.Namespace) -> Row:
    port = args.port or free_port()
    runner = run_wrk if args.client == "wrk" else run_python
    with server(db_url, port) as (base, _proc):
        users = [setup_user(base) for _ in range(args.users)]
        row = Row(name)
        row.bare = runner(base, BARE, [], args)
        row.auth = runner(base, BALANCES, users, args)
        return row


def fmt_table(rows: list[Row]) -> str:
    head = f"{'backend':<10} {'bare req/s':>11} {'auth req/s':>11} {'ratio':>7} {'errors b/a':>11}  goal>=50%"
    lines = [head, "-" * len(head)]
    for row in rows:
        if row.bare is None or row.auth is None:
            lines.append(f"{row.backend:<10} skipped: {row.note}")
            continue
        ratio = row.auth.rps / row.bare.rps if row.bare.rps else 0.0
        lines.append(f"{row.backend:<10} {row.bare.rps:>11.0f} {row.auth.rps:>11.0f} {ratio:>7.1%} "
                     f"{f'{row.bare.errors}/{row.auth.errors}':>11}  {'met' if ratio >= 0.5 else 'NOT met'}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per endpoint (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each measurement (default 1)")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    p.add_argument("--users", type=int, default=16, help="users whose signed requests rotate (default 16)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1; the machine has few cores)")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--pg-url", default=os.environ.get("STAKEHOUSE_TEST_PG_URL", ""),
                   help="PostgreSQL URL of an existing database to create the bench database from "
                        "(default: $STAKEHOUSE_TEST_PG_URL)")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                   help="load generator: wrk (if installed) or aiohttp in a separate process")
    p.add_argument("--client-spec", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.client_spec:  # internal: this process is the Python load generator
        spec = json.loads(args.client_spec)
        r = asyncio.run(_client_main(**spec))
        print(json.dumps({"requests": r.requests, "errors": r.errors, "seconds": r.seconds}))
        return 0

    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    if args.client == "wrk" and not shutil.which("wrk"):
        p.error("wrk is not installed (apt-get install wrk), use --client python")

    print(f"client={args.client} connections={args.connections} users={args.users} duration={args.duration:g}s "
          f"warmup={args.warmup:g}s cpus={os.cpu_count()} (client and server share the machine)", flush=True)
    rows: list[Row] = []
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"warning: 1-minute load average is {load1:.2f} before starting; other processes on this machine "
              f"will lower (and add noise to) both figures", flush=True)
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            ctx: contextlib.AbstractContextManager[str] = sqlite_backend()
        elif backend in ("postgres", "postgresql", "pg"):
            backend = "postgres"
            if not args.pg_url:
                print("postgres: skipped (no --pg-url and STAKEHOUSE_TEST_PG_URL is not set)", flush=True)
                rows.append(Row(backend, note="no --pg-url / STAKEHOUSE_TEST_PG_URL"))
                continue
            ctx = postgres_backend(args.pg_url)
        else:
            p.error(f"unknown backend {backend!r}")
        print(f"{backend}: running ...", flush=True)
        try:
            with ctx as db_url:
                rows.append(bench_backend(backend, db_url, args))
        except Exception as exc:  # report and go on with the other backends
            msg = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:200]
            print(f"{backend}: skipped ({msg})", flush=True)
            rows.append(Row(backend, note=msg))
    print()
    print(fmt_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
