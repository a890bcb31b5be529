"""Starting the sandbox as a newcomer does (``stakehouse serve --sandbox``, what ``make run`` runs):
the banner is the last thing printed and says how to move the clock and lift the limits; the log
holds structured lines only (no migration chatter); the credentials file has its documented layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.stack import free_port

#: The layout README.md documents for data/demo-credentials.json.
USER_KEYS = {"name", "uid", "env", "flag", "apiKey", "secretKey", "passphrase"}


def start(tmp: Path, **env: str) -> tuple[str, str, Path]:
    """Run the sandbox until it answers, stop it; (stdout, stderr, data dir)."""
    port = free_port()
    data = tmp / "data"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAKEHOUSE_")}
    environ.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "stakehouse.cli", "serve", "--sandbox", "--port", str(port),
                             "--db", f"sqlite:///{data}/stakehouse.db"], cwd=tmp, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    return out, err, data


def test_the_banner_is_last_and_the_credentials_file_keeps_its_layout(tmp_path: Path) -> None:
    out, err, data = start(tmp_path)
    banner = out.strip()
    assert banner.startswith("Stakehouse sandbox on http://127.0.0.1:"), out
    assert banner.splitlines()[-1].startswith("  credentials : "), out  # nothing after the banner
    assert "POST /admin/clock/freeze" in banner and "STAKEHOUSE_RATE_LIMIT_FACTOR=100" in banner
    # the log: structured lines only (Alembic's own narration is kept out); the migration is one of them
    events = [json.loads(line)["event"] for line in err.splitlines() if line.strip()]
    assert "migrated" in events, err

    creds = json.loads((data / "demo-credentials.json").read_text())
    assert set(creds) == {"adminToken", "users", "gemini", "broker", "web", "oauth"}
    assert set(creds["oauth"]) == {"brokerUid", "brokerCode", "clientId", "clientSecret", "redirectUri"}
    assert creds["oauth"]["clientId"] in banner and creds["oauth"]["clientSecret"] in banner
    assert set(creds["web"]) == {"alice", "bob"} and all(f"{n} / {p}" in banner for n, p in creds["web"].items())
    assert [(u["name"], u["env"], u["flag"]) for u in creds["users"]] == [("alice", "demo", "1"), ("bob", "live", "0")]
    assert all(set(u) == USER_KEYS for u in creds["users"])
    assert set(creds["gemini"]) == {"providerId", "keys"} and set(creds["gemini"]["keys"]) == {"alice", "bob"}
    assert all(set(k) == {"apiKey", "secret"} for k in creds["gemini"]["keys"].values())
    assert creds["broker"] == {"uids": [u["uid"] for u in creds["users"]], "level": "lv1"}
    assert creds["users"][0]["apiKey"] in banner and creds["adminToken"] in banner
    assert oct((data / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"

    # a second start reads the same file and shows the factor in force
    again, _err, _data = start(tmp_path, STAKEHOUSE_RATE_LIMIT_FACTOR="100")
    assert creds["users"][0]["apiKey"] in again and "x100 (STAKEHOUSE_RATE_LIMIT_FACTOR)" in again
    assert json.loads((data / "demo-credentials.json").read_text()) == creds


def test_the_banners_ccxt_trading_snippet_runs_as_printed(tmp_path: Path) -> None:
    """The banner's spot-market lines are a script a newcomer pastes: run them as printed."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAKEHOUSE_")}
    proc = subprocess.Popen([sys.executable, "-m", "stakehouse.cli", "serve", "--sandbox", "--port", str(port),
                             "--db", f"sqlite:///{tmp_path}/data/stakehouse.db"], cwd=tmp_path, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("  credentials : ") for line in lines):
            line = proc.stdout.readline()
            assert line, "the sandbox stopped before its banner"
            lines.append(line.rstrip("\n"))
        start = next(i for i, line in enumerate(lines) if line.startswith("  spot market : "))
        script = "\n".join(line[4:] for line in lines[start + 1:start + 4])
        assert script.startswith("import ccxt") and f"127.0.0.1:{port}" in script
        deadline = time.monotonic() + 60
        while True:  # the banner is printed as the server starts listening
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        last, order = done.stdout.splitlines()
        assert float(last) > 0
        order_id, balance = order.split(" ", 1)
        # the trading account holds what was bought, less the 0.1 % taker fee (funding keeps the 1 BTC)
        assert order_id.isdigit() and "'total': 0.000999" in balance
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
