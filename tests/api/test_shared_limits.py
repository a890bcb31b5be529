"""Two server processes on one database and one Redis share the rate-limit counters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from tests.api.test_sandbox_admin import signed_get
from tests.stack import ADMIN_TOKEN, free_port, start_stack


def start_server_process(db: str, server_key: str, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "STAKEHOUSE_SERVER_KEY": server_key, "STAKEHOUSE_ADMIN_TOKEN": ADMIN_TOKEN,
           "STAKEHOUSE_REDIS_URL": redis_url, "STAKEHOUSE_RATE_LIMIT_FACTOR": "1", "STAKEHOUSE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "stakehouse.cli", "serve", "--db", db, "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("second server did not start")


def test_two_server_processes_share_one_limit(backend: str, make_db: Callable[[str], str], redis_url: str) -> None:
    db = make_db(backend)
    first = start_stack(db, redis_url=redis_url, rate_limit_factor=1.0)
    proc, second_url = start_server_process(db, first.services.settings.server_key, redis_url)
    try:
        c = first.new_user()
        codes = []
        for i in range(8):  # asset/balances allows 6 per second per user
            base = first.base_url if i % 2 == 0 else second_url
            codes.append(signed_get(base, c, "/api/v5/asset/balances").json()["code"])
        assert codes.count("0") == 6 and codes.count("50011") == 2, codes
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        first.stop()
