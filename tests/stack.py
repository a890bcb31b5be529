"""A real Stakehouse server for tests: uvicorn in a thread, on SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import uvicorn

from stakehouse.app import create_app
from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services

ADMIN_TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Creds:
    uid: str
    env: str
    api_key: str
    secret: str
    passphrase: str

    @property
    def flag(self) -> str:
        return "1" if self.env == "demo" else "0"


@dataclass
class Stack:
    services: Services
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                  timeout=60)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.admin.request(method, path, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json()

    def new_user(self, *, env: str = "live", funds: dict[str, str] | None = None, perms: tuple[str, ...] = (
            "read_only", "trade", "withdraw"), ips: tuple[str, ...] = (), kyc: int = 2) -> Creds:
        user = self.call("POST", "/admin/users", json={"env": env, "kycLevel": kyc})
        return self.add_key(user["uid"], env=env, funds=funds, perms=perms, ips=ips)

    def add_key(self, uid: str, *, env: str, funds: dict[str, str] | None = None,
                perms: tuple[str, ...] = ("read_only", "trade", "withdraw"), ips: tuple[str, ...] = ()) -> Creds:
        key = self.call("POST", f"/admin/users/{uid}/api-keys", json={"perms": list(perms), "ips": list(ips)})
        for ccy, amt in (funds or {}).items():
            self.call("POST", f"/admin/users/{uid}/deposits", json={"ccy": ccy, "amt": amt})
        return Creds(uid, env, key["apiKey"], key["secretKey"], key["passphrase"])

    def balances(self, uid: str) -> dict[tuple[str, str], Decimal]:
        rows = self.call("GET", f"/admin/users/{uid}/balances")
        return {(r["acctType"], r["ccy"]): Decimal(r["available"]) for r in rows}

    def audit_ok(self) -> dict[str, Any]:
        r = self.admin.get("/admin/audit")
        report = r.json()
        assert r.status_code == 200 and report["ok"], report
        return report

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.admin.close()
        self.services.close()


def start_stack(database_url: str, **settings: Any) -> Stack:
    values: dict[str, Any] = {"database_url": database_url, "sandbox": True, "server_key": new_server_key(),
                              "admin_token": ADMIN_TOKEN, "rate_limit_factor": 1000.0, "key_expiry_enabled": True,
                              "log_level": "WARNING", "files_dir": tempfile.mkdtemp(prefix="stakehouse-files-")}
    values.update(settings)
    services = Services(Settings(**values))
    app = create_app(services, ADMIN_TOKEN)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return Stack(services, f"http://127.0.0.1:{port}", server, thread)


def start_server_process(db: str, server_key: str, *, max_file_bytes: int | None = None,
                         **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """``stakehouse serve`` in a process of its own on ``db`` (extra ``STAKEHOUSE_*`` settings in
    ``env``); returns the process and its base URL once it answers. ``max_file_bytes``: no file the
    process writes may grow past this size (``RLIMIT_FSIZE``: a write past it fails as on a full
    disk; Python ignores the signal that would otherwise kill the process)."""
    port = free_port()
    environ = {**os.environ, "STAKEHOUSE_SERVER_KEY": server_key, "STAKEHOUSE_ADMIN_TOKEN": ADMIN_TOKEN,
               "STAKEHOUSE_LOG_LEVEL": "WARNING", "STAKEHOUSE_FILES_DIR": tempfile.mkdtemp(prefix="stakehouse-files-"),
               **env}
    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    proc = subprocess.Popen([sys.executable, "-m", "stakehouse.cli", "serve", "--db", db, "--port", str(port)],
                            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=limit if max_file_bytes is not None else None)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server process did not start")


@contextlib.contextmanager
def two_workers(db: str) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """Two ``stakehouse serve`` processes (sandbox) on database ``db``: their base URLs and an admin
    call (``call(method, path, **httpx kwargs) -> JSON``, asserting success) against the first."""
    key = new_server_key()
    first, a = start_server_process(db, key, STAKEHOUSE_SANDBOX="true")
    second, b = start_server_process(db, key, STAKEHOUSE_SANDBOX="true")
    admin = httpx.Client(base_url=a, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)

    def call(method: str, path: str, **kw: Any) -> Any:
        r = admin.request(method, path, **kw)
        assert r.status_code < 300, r.text
        return r.json()

    try:
        yield a, b, call
    finally:
        admin.close()
        for proc in (first, second):
            proc.terminate()
            proc.wait(timeout=30)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
