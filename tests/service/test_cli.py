"""The operator CLI over a real database: audit passes, then catches a corrupted balance.

The commands run in this process (``tests/support/cli.py``); what only a new process shows (the
``python -m stakehouse.cli`` entry point, a configuration that stops it starting) runs in one."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import update

from stakehouse.config import Settings
from stakehouse.db.tables import ledger_accounts
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.support.cli import Done, invoke


def cli(*args: str, db: str, key: str) -> Done:
    """``stakehouse ARGS`` on ``db`` with ``key``, in this process (``tests/support/cli.py``)."""
    return invoke(*args, env={"STAKEHOUSE_SERVER_KEY": key, "STAKEHOUSE_DATABASE_URL": db})


def test_cli_creates_credits_and_audits(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    created = cli("users", "create", "--env", "live", "--kyc-level", "1", db=db, key=key)
    assert created.returncode == 0, created.stderr
    uid = created.stdout.split('"uid": "')[1].split('"')[0]
    credited = cli("users", "deposit", uid, "USDT", "12.5", db=db, key=key)
    assert credited.returncode == 0, credited.stderr
    refused = cli("users", "deposit", uid, "USDT", "1e3", db=db, key=key)
    assert refused.returncode == 2 and "amt" in refused.stderr
    ok = cli("audit", db=db, key=key)
    assert ok.returncode == 0 and "[ok] cached balances equal the sum of postings" in ok.stdout

    services = Services(Settings(database_url=db, server_key=key))
    with services.db.write() as conn:  # tamper with a cached balance behind the ledger's back
        conn.execute(update(ledger_accounts).where(ledger_accounts.c.uid == uid).values(available=Decimal("99")))
    services.close()
    broken = cli("audit", db=db, key=key)
    assert broken.returncode == 1
    assert "[FAIL] cached balances equal the sum of postings" in broken.stdout and "cached 99" in broken.stdout


def test_cli_maintenance_mode(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    assert json.loads(cli("maintenance", "on", db=db, key=key).stdout) == {"on": True}
    services = Services(Settings(database_url=db, server_key=key))  # another process sees it
    assert services.in_maintenance()
    services.close()
    assert json.loads(cli("maintenance", "off", db=db, key=key).stdout) == {"on": False}
    assert json.loads(cli("maintenance", db=db, key=key).stdout) == {"on": False}
    bad = cli("maintenance", "maybe", db=db, key=key)
    assert bad.returncode == 2 and "on, off or show" in bad.stderr


def test_cli_refuses_clock_in_production(backend: str, make_db: Callable[[str], str]) -> None:
    r = cli("clock", "advance", "--days", "1", db=make_db(backend), key=new_server_key())
    assert r.returncode == 2 and "sandbox" in r.stderr


def test_database_remembers_its_mode(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    sandbox = Services(Settings(database_url=db, server_key=key, sandbox=True))
    start = sandbox.clock.now()
    sandbox.close()
    # the CLI needs no flag: the database says it is a sandbox, so its clock may move
    moved = cli("clock", "advance", "--days", "2", db=db, key=key)
    assert moved.returncode == 0, moved.stderr
    assert '"now": "' in moved.stdout
    reopened = Services(Settings(database_url=db, server_key=key))
    assert reopened.settings.sandbox is True and reopened.clock.now() >= start + dt.timedelta(days=2)
    reopened.close()
    try:
        Services(Settings(database_url=db, server_key=key, sandbox=False))
    except SystemExit as exc:
        assert "created in sandbox mode" in str(exc)
    else:
        raise AssertionError("a sandbox database opened in production mode")


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "STAKEHOUSE_CONFIG": str(tmp_path / "nope.toml")}
    r = subprocess.run([sys.executable, "-m", "stakehouse.cli", "audit"], capture_output=True, text=True, env=env,
                       timeout=60, check=False)
    assert r.returncode != 0 and "not a file" in r.stderr


def test_config_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "stakehouse.toml"
    path.write_text('business_tz = "UTC"\nauth_skew_ms = 5000\n')
    os.environ["STAKEHOUSE_CONFIG"] = str(path)
    try:
        settings = Settings()
    finally:
        del os.environ["STAKEHOUSE_CONFIG"]
    assert (settings.business_tz, settings.auth_skew_ms) == ("UTC", 5000)


def test_a_failed_start_records_no_mode(backend: str, make_db: Callable[[str], str]) -> None:
    db = make_db(backend)
    env = {k: v for k, v in os.environ.items() if k != "STAKEHOUSE_SERVER_KEY"}
    failed = subprocess.run([sys.executable, "-m", "stakehouse.cli", "audit", "--db", db], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert failed.returncode != 0 and "STAKEHOUSE_SERVER_KEY is required" in failed.stderr
    sandbox = Services(Settings(database_url=db, server_key=new_server_key(), sandbox=True))  # still possible
    assert sandbox.settings.sandbox is True
    sandbox.close()


def test_cli_journal(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    uid = cli("users", "create", db=db, key=key).stdout.split('"uid": "')[1].split('"')[0]
    assert cli("users", "deposit", uid, "BTC", "0.25", db=db, key=key).returncode == 0
    shown = cli("users", "journal", uid, db=db, key=key)
    assert shown.returncode == 0 and '"type": "deposit"' in shown.stdout and '"amount": "0.25"' in shown.stdout
    unknown = cli("users", "journal", "1", db=db, key=key)
    assert unknown.returncode == 2 and "does not exist" in unknown.stderr


def test_cli_clock_controls_and_key_freeze(make_db: Callable[[str], str]) -> None:
    db, key = make_db("sqlite"), new_server_key()
    sandbox = Services(Settings(database_url=db, server_key=key, sandbox=True))
    uid = sandbox.accounts.create_user(env="live").uid
    api_key = sandbox.accounts.create_key(uid, perms=["read_only"]).key.api_key
    sandbox.close()

    frozen = cli("keys", "freeze", api_key, db=db, key=key)
    assert frozen.returncode == 0 and json.loads(frozen.stdout)["frozen"] is True, frozen.stderr
    assert json.loads(cli("keys", "unfreeze", api_key, db=db, key=key).stdout)["frozen"] is False
    assert cli("keys", "freeze", "no-such-key", db=db, key=key).returncode == 2

    pinned = json.loads(cli("clock", "freeze", db=db, key=key).stdout)
    assert pinned["running"] is False
    assert json.loads(cli("clock", "show", db=db, key=key).stdout)["now"] == pinned["now"]
    for args, says in ((("clock", "advance"), "say how far"),
                       (("clock", "advance", "--to", "9999-01-01T00:00:00Z"), "at most 3660 days"),
                       (("clock", "advance", "--to", "2000-01-01T00:00:00Z"), "is before the sandbox clock"),
                       (("clock", "advance", "--to", "soon"), "ISO 8601")):
        refused = cli(*args, db=db, key=key)
        assert refused.returncode == 2 and says in refused.stderr, (args, refused.stderr)
    assert cli("clock", "advance", "--days", "3661", db=db, key=key).returncode == 2  # typer's own range check
    stay = json.loads(cli("clock", "advance", "--days", "0", db=db, key=key).stdout)
    assert stay["now"] == pinned["now"]
    moved = cli("clock", "advance", "--days", "3", db=db, key=key)
    assert moved.returncode == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert report["now"] == (dt.datetime.fromisoformat(pinned["now"]) + dt.timedelta(days=3)).isoformat()
    assert report["jobsRunCount"] == len(report["jobsRun"]) > 0
    assert "job runs" in moved.stderr  # progress, on stderr
    assert json.loads(cli("clock", "resume", db=db, key=key).stdout)["running"] is True
