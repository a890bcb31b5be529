#!/usr/bin/env python3
"""Soak test: the mix of ``bench/load.py`` for a long time at a fraction of its measured maximum,
against one ``stakehouse serve --workers N`` on PostgreSQL with Redis, with memory and connection
counts sampled.

1. A fresh database (production mode) and ``--users`` funded users, as in ``load.py``.
2. The maximum: the mix at full speed for ``--measure`` seconds (after ``--warmup``), as ``load.py``
   runs it; per endpoint req/s.
3. The soak: the same mix for ``--duration`` seconds, each endpoint paced to ``--fraction`` of its
   maximum (a Lua ``delay()`` gives each request a slot 1/rate s after the previous one, on the
   wall clock read through LuaJIT's FFI; after a slow spell at most 1 s of missed slots is made
   up). The soak keeps the ``--connections`` of the maximum (``--soak-connections`` to change it):
   the server's Redis and PostgreSQL pools grow with the requests in flight, so more client
   connections than while measuring would raise their high-water marks during the soak, and
   that growth would say nothing about a leak. When the server is slower than the target (a
   busy machine), the connections are the limit and the rate falls short; it is reported. wrk runs in consecutive
   slices of ``--slice`` seconds, each with fresh signatures (prepared during the last ``LEAD``
   seconds of the slice before), so the OKX timestamp window never expires.
4. Every ``--sample`` seconds: the RSS of the server's parent process and of each worker (the
   process tree under the server's pid, from /proc), the connections to the benchmark database
   (``pg_stat_activity``), the server's own TCP connections to PostgreSQL and to Redis (its
   sockets, from /proc), Redis ``connected_clients`` (the whole Redis: other clients of the same
   Redis show there too, so it is reported but not judged), and the 1-minute load average.
5. At the end: requests, errors per endpoint (a reply that is not 200 with ``"code":"0"``, socket
   errors, timeouts of 10 s), achieved versus target rate, a table of one line per slice, the
   audit, and the verdict.

Criteria (issue 19, scope 4): zero errors; after ``--settle`` seconds of warm-up, every RSS and
connection count flat within ``--tolerance`` (10 %): the mean of the first 3 samples after the
warm-up against the max of the last 3 samples and against the overall max; a worker restart
fails; the audit clean after. Exit status 1 if any criterion fails.

Usage (from the project root; needs wrk and a PostgreSQL and Redis to use)::

    STAKEHOUSE_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/soak.py [--workers 2] [--duration 1800] [--fraction 0.7] [--measure 15]
        [--slice 60] [--sample 10] [--settle 120] [--connections 32] [--soak-connections N] [--users 64]
        [--redis-url redis://127.0.0.1:6379/0] [--pool-prefill 24]

The server runs with ``STAKEHOUSE_POOL_PREFILL=--pool-prefill`` (docs/operations.md recommends it in
production): each worker opens its PostgreSQL pools' kept connections and that many Redis ones at
start, so the counts judged are the pools' working level, not their climb to the peak concurrency.
``--pool-prefill 0`` shows the climb (the soaks of the first issue-19 session).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import balances as b
import load

LEAD = 20.0  # seconds before a slice's end at which the next slice's requests are signed

# Appended to load.py's script for each endpoint: pacing, and the first failed reply for the report.
PACE_LUA = r"""
-- soak.py: one request every INTERVAL ms on a timetable; after a slow spell, up to 1 s of missed
-- slots is made up (sent as soon as a connection is free), no more
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } soak_timeval;
int gettimeofday(soak_timeval *tv, void *tz);
]]
local soak_tv = ffi.new("soak_timeval")
local soak_interval = INTERVAL
local soak_next = 0
function delay()
  ffi.C.gettimeofday(soak_tv, nil)
  local now = tonumber(soak_tv.tv_sec) * 1000 + tonumber(soak_tv.tv_usec) / 1000
  if soak_next == 0 then soak_next = now end
  local slot = soak_next
  if slot < now - 1000 then slot = now - 1000 end
  soak_next = slot + soak_interval
  if slot < now then return 0 end
  return slot - now
end
first_error = ""
local counted_response = response
function response(status, headers, body)
  if first_error == "" and (status ~= 200 or not string.find(body, '"code":"0"', 1, true)) then
    first_error = status .. " " .. string.sub(body, 1, 200)
  end
  counted_response(status, headers, body)
end
local counted_done = done
function done(summary, latency, requests)
  counted_done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local e = t:get("first_error")
    if e ~= nil and e ~= "" then
      local escaped = e:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)
      io.write('RESULT {"first_error": "' .. escaped .. '"}\n')
      break
    end
  end
end
"""


# -- the server's processes and connections, from /proc -------------------------------------------


def children(pid: int) -> list[int]:
    out: list[int] = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(x) for x in Path(path).read_text().split()]
        except OSError:
            pass
    return out


def process_tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def tcp_connections(inodes: set[int], ports: set[int]) -> dict[int, int]:
    """Established TCP connections among ``inodes`` to each remote port of ``ports``."""
    counts = dict.fromkeys(ports, 0)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            port = int(cols[2].rsplit(":", 1)[1], 16)
            if cols[3] == "01" and port in counts and int(cols[9]) in inodes:
                counts[port] += 1
    return counts


# -- samples --------------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    load1: float
    rss: dict[str, int]  # KiB: "parent", "w1", "w2", ... (workers by pid), "other", "total"
    pids: tuple[int, ...]
    pg: int  # pg_stat_activity rows of the benchmark database
    pg_own: int  # the server's TCP connections to PostgreSQL
    redis_own: int  # the server's TCP connections to Redis
    redis_clients: int  # Redis INFO connected_clients (the whole Redis)


class Sampler:
    def __init__(self, pid: int, pg_admin_url: str, db_name: str, redis_url: str, every: float) -> None:
        import psycopg
        import redis

        self.pid, self.db_name, self.every = pid, db_name, every
        self.pg = psycopg.connect(pg_admin_url, autocommit=True, connect_timeout=5)
        self.redis = redis.Redis.from_url(redis_url)
        self.pg_port = urlsplit(pg_admin_url).port or 5432
        self.redis_port = urlsplit(redis_url).port or 6379
        self.samples: list[Sample] = []
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> Sample:
        pids = process_tree(self.pid)
        workers = sorted(p for p in pids if p != self.pid and "spawn_main" in cmdline(p))
        rss = {"parent": rss_kib(self.pid)}
        rss.update({f"w{i + 1}": rss_kib(p) for i, p in enumerate(workers)})
        rss["other"] = sum(rss_kib(p) for p in pids if p != self.pid and p not in workers)
        rss["total"] = sum(rss.values())
        inodes: set[int] = set()
        for p in pids:
            inodes |= socket_inodes(p)
        own = tcp_connections(inodes, {self.pg_port, self.redis_port})
        row = self.pg.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.db_name,)).fetchone()
        info = cast(dict[str, Any], self.redis.info("clients"))
        return Sample(time.monotonic() - self.start, os.getloadavg()[0], rss, tuple(sorted(pids)),
                      int(row[0]) if row else 0, own[self.pg_port], own[self.redis_port],
                      int(info["connected_clients"]))

    def _run(self) -> None:
        n = 0
        while True:
            try:
                self.samples.append(self.sample())
            except Exception as exc:  # keep sampling; say why one sample is missing
                print(f"sample failed: {type(exc).__name__}: {exc}", flush=True)
            n += 1
            if self._stop.wait(max(0.0, self.start + n * self.every - time.monotonic())):
                return

    def __enter__(self) -> Sampler:
        self.start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.sample())  # the last one, after the load
        self.pg.close()
        self.redis.close()


# -- the soak -------------------------------------------------------------------------------------


@dataclass
class Slice:
    start: float  # seconds since the soak's start
    end: float
    raw: dict[str, dict[str, Any]]

    @property
    def requests(self) -> int:
        return sum(int(r["requests"]) for r in self.raw.values())

    @property
    def errors(self) -> int:
        return sum(int(r["errors"]) + int(r["socket_errors"]) for r in self.raw.values())

    @property
    def rps(self) -> float:
        seconds = max(r["us"] for r in self.raw.values()) / 1e6
        return self.requests / seconds if seconds else 0.0


@dataclass
class Soak:
    targets: dict[str, float]
    slices: list[Slice] = field(default_factory=list)
    wall: float = 0.0


def pace_lua(targets: dict[str, float]) -> Callable[[load.Endpoint], str]:
    def extra(ep: load.Endpoint) -> str:
        return PACE_LUA.replace("INTERVAL", f"{1000.0 / targets[ep.name]:.6f}")
    return extra


def soak(base: str, users: list[dict[str, str]], targets: dict[str, float], args: argparse.Namespace,
         sampler: Sampler, on_slice: Callable[[Slice], None]) -> Soak:
    host = base.split("://", 1)[1]
    n = max(1, math.ceil(args.duration / args.slice))
    lengths = [args.slice] * (n - 1) + [args.duration - args.slice * (n - 1)]
    # Scripts signed at time T cover T-5 .. T+horizon+10. The next slice's are signed LEAD s before
    # this one ends (the smaller the script, the faster wrk starts), and reach 25 s past their slice.
    horizon = int(LEAD + args.slice) + 15

    def prepare(at: float) -> dict[str, str]:
        time.sleep(max(0.0, at - time.monotonic()))
        return load.write_scripts(host, users, horizon, pace_lua(targets))

    result = Soak(targets)
    started = time.monotonic()
    upcoming: Future[dict[str, str]] | None = None
    scripts = load.write_scripts(host, users, horizon, pace_lua(targets))
    with ThreadPoolExecutor(1) as prep:
        try:
            for i, seconds in enumerate(lengths):
                upcoming = prep.submit(prepare, time.monotonic() + seconds - LEAD) if i + 1 < n else None
                t0 = time.monotonic() - sampler.start
                raw = load.run_all(base, scripts, args.soak_connections, seconds)
                sl = Slice(t0, time.monotonic() - sampler.start, raw)
                result.slices.append(sl)
                on_slice(sl)
                for path in scripts.values():
                    os.unlink(path)
                scripts = upcoming.result() if upcoming else {}
                upcoming = None
        finally:
            if upcoming is not None:
                scripts.update({f"next {k}": v for k, v in upcoming.result().items()})
            for path in scripts.values():
                os.unlink(path)
    result.wall = time.monotonic() - started
    return result


# -- report ---------------------------------------------------------------------------------------


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f}"


def slice_line(sl: Slice, samples: list[Sample]) -> str:
    last = next((s for s in reversed(samples) if s.t <= sl.end + 1), samples[-1] if samples else None)
    p99 = max(float(r["p99"]) for r in sl.raw.values()) / 1000
    head = f"{sl.end / 60:>5.1f} {sl.rps:>7.0f} {sl.errors:>6} {p99:>8.0f}"
    if last is None:
        return head
    workers = " ".join(f"{mib(v):>5}" for k, v in last.rss.items() if k.startswith("w"))
    return (f"{head} {mib(last.rss['parent']):>6} {workers} {mib(last.rss['total']):>6} {last.pg:>4} "
            f"{last.pg_own:>6} {last.redis_own:>6} {last.redis_clients:>7} {last.load1:>6.2f}")


def slice_header(workers: int) -> str:
    w = " ".join(f"{'w' + str(i + 1):>5}" for i in range(workers))
    return (f"{'min':>5} {'req/s':>7} {'errors':>6} {'p99 ms':>8} {'parent':>6} {w} {'total':>6} {'pg':>4} "
            f"{'pg own':>6} {'rd own':>6} {'rd all':>7} {'load1':>6}   (RSS MiB; pg = pg_stat_activity)")


def flatness(samples: list[Sample], settle: float, tolerance: float) -> tuple[list[str], bool]:
    after = [s for s in samples if s.t >= settle]
    if len(after) < 6:
        return [f"flatness: only {len(after)} samples after the {settle:g} s warm-up (6 needed): not judged"], False
    series: dict[str, list[float]] = {}
    for s in after:
        for k, v in s.rss.items():
            if k != "other" or any(x.rss["other"] for x in after):
                series.setdefault(f"RSS {k} (MiB)", []).append(v / 1024)
        series.setdefault("pg_stat_activity", []).append(s.pg)
        series.setdefault("server->pg conns", []).append(s.pg_own)
        series.setdefault("server->redis conns", []).append(s.redis_own)
        series.setdefault("redis connected_clients*", []).append(s.redis_clients)
    lines = [f"{'after warm-up':<26} {'first3':>8} {'last3 max':>9} {'max':>8} {'min':>8} {'growth':>7}  flat"]
    ok = True
    for name, xs in series.items():
        base = sum(xs[:3]) / 3
        last, top = max(xs[-3:]), max(xs)
        growth = top / base - 1 if base else (0.0 if top == 0 else math.inf)
        flat = last <= base * (1 + tolerance) and top <= base * (1 + tolerance)
        judged = not name.endswith("*")
        ok = ok and (flat or not judged)
        verdict = ("yes" if flat else "NO") if judged else ("(not judged)" if flat else "(not judged: moved)")
        lines.append(f"{name:<26} {base:>8.1f} {last:>9.1f} {top:>8.1f} {min(xs):>8.1f} {growth:>+7.1%}  {verdict}")
    lines.append("* the whole Redis: other clients of the same Redis count too")
    return lines, ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=1800.0, help="soak seconds (default 1800)")
    p.add_argument("--fraction", type=float, default=0.7, help="of the measured maximum (default 0.7)")
    p.add_argument("--measure", type=float, default=15.0, help="seconds measuring the maximum (default 15)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before measuring the maximum (default 2)")
    p.add_argument("--slice", type=float, default=60.0, help="seconds per wrk run during the soak (default 60)")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    p.add_argument("--settle", type=float, default=120.0, help="warm-up excluded from the verdict (default 120)")
    p.add_argument("--tolerance", type=float, default=0.10, help="allowed growth after warm-up (default 0.10)")
    p.add_argument("--connections", type=int, default=32, help="while measuring the maximum (default 32)")
    p.add_argument("--soak-connections", type=int, default=0, help="during the soak (default: --connections)")
    p.add_argument("--pool-prefill", type=int, default=24,
                   help="STAKEHOUSE_POOL_PREFILL of the server, as in production (default 24; 0: pools fill on use)")
    args = load.parse_arguments(p)
    if args.slice <= LEAD + 10:
        p.error(f"--slice must be over {LEAD + 10:g} s")
    args.soak_connections = args.soak_connections or args.connections

    def now() -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def loadavg() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=b.ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=b.ROOT, capture_output=True, text=True)
    print(f"start {now()}  load average {loadavg()}  cpus={os.cpu_count()}  HEAD {head.stdout.strip()} "
          f"({len(dirty.stdout.splitlines())} uncommitted files under src/)", flush=True)
    print(f"workers={args.workers} duration={args.duration:g}s fraction={args.fraction:g} connections="
          f"{args.connections}/{args.soak_connections} (maximum/soak) users={args.users} slice={args.slice:g}s "
          f"sample={args.sample:g}s settle={args.settle:g}s pool_prefill={args.pool_prefill} "
          "(client and server share the machine)", flush=True)

    libpq_admin = "postgresql://" + args.pg_url.split("://", 1)[1]
    with b.postgres_backend(args.pg_url) as db_url, \
            load.server(db_url, args.workers, args.redis_url, pool_prefill=args.pool_prefill) as (base, proc):
        db_name = db_url.rsplit("/", 1)[1]
        users = load.setup_users(base, args.users)
        print(f"{len(users)} users ready; measuring the maximum ({args.measure:g} s after {args.warmup:g} s) ...",
              flush=True)
        peak = load.run_mix(base, users, argparse.Namespace(warmup=args.warmup, duration=args.measure,
                                                            connections=args.connections))
        print(load.table({args.workers: peak}), flush=True)
        peak_errors = sum(f.errors for f in peak.values())
        targets = {name: args.fraction * f.rps for name, f in peak.items()}
        if min(targets.values()) <= 0:
            print("an endpoint served nothing while measuring the maximum: no soak", flush=True)
            return 1
        target = sum(targets.values())
        print(f"target: {target:.0f} req/s ({args.fraction:.0%} of {sum(f.rps for f in peak.values()):.0f}); "
              + ", ".join(f"{k} {v:.1f}" for k, v in targets.items()), flush=True)

        with Sampler(proc.pid, libpq_admin, db_name, args.redis_url, args.sample) as sampler:
            first = sampler.samples[0] if sampler.samples else sampler.sample()
            for pid in first.pids:
                print(f"  process {pid}: {cmdline(pid)[:110]}", flush=True)
            print(slice_header(args.workers), flush=True)
            result = soak(base, users, targets, args, sampler,
                          lambda sl: print(slice_line(sl, sampler.samples), flush=True))
        samples = sampler.samples
        failed_audit = load.audit_failure(base)
        if proc.poll() is not None:
            print(f"the server exited with {proc.returncode}", flush=True)

    # -- summary --
    print(f"\nend {now()}  load average {loadavg()}")
    totals: dict[str, dict[str, int]] = {}
    first_errors: dict[str, str] = {}
    for sl in result.slices:
        for name, r in sl.raw.items():
            t = totals.setdefault(name, {"requests": 0, "errors": 0, "socket_errors": 0, "us": 0})
            for k in t:
                t[k] += int(r[k])
            if r.get("first_error") and name not in first_errors:
                first_errors[name] = f"{r['first_error']} (slice ending {sl.end / 60:.1f} min)"
    print(f"{'endpoint':<16} {'requests':>9} {'req/s':>7} {'target':>7} {'code/status errors':>19} "
          f"{'socket/timeout':>14}")
    for name, t in totals.items():
        rps = t["requests"] / (t["us"] / 1e6) if t["us"] else 0.0
        print(f"{name:<16} {t['requests']:>9} {rps:>7.1f} {targets[name]:>7.1f} {t['errors']:>19} "
              f"{t['socket_errors']:>14}")
    requests = sum(t["requests"] for t in totals.values())
    errors = sum(t["errors"] + t["socket_errors"] for t in totals.values())
    wrk_seconds = sum(max(r["us"] for r in sl.raw.values()) / 1e6 for sl in result.slices)
    achieved = requests / wrk_seconds if wrk_seconds else 0.0
    print(f"{'TOTAL':<16} {requests:>9} {achieved:>7.1f} {target:>7.1f} {errors:>19}")
    print(f"achieved {achieved:.1f} req/s over {wrk_seconds:.0f} s of wrk time ({achieved / target:.1%} of the "
          f"target {target:.1f}); {requests / result.wall:.1f} req/s over {result.wall:.0f} s of wall time "
          f"(with wrk's start and stop between slices)")
    for name, e in first_errors.items():
        print(f"first failed reply, {name}: {e}")
    pid_sets = {s.pids for s in samples}
    restarted = len(pid_sets) > 1
    if restarted:
        print(f"the server's process tree changed during the soak: {sorted(pid_sets)}")
    lines, flat = flatness(samples, args.settle, args.tolerance)
    print("\n".join(lines))
    print(f"audit after the soak: {'clean' if failed_audit is None else 'FAILED: ' + failed_audit}")
    checks = {
        "zero errors": errors == 0 and peak_errors == 0,
        "RSS and connections flat": flat,
        "no worker restart": not restarted,
        "audit clean": failed_audit is None,
    }
    print("verdict: " + "; ".join(f"{k}: {'pass' if v else 'FAIL'}" for k, v in checks.items()))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
