"""A full disk under the rebate-file directory (PostgreSQL; the server is a process of its own whose
files may not grow past 4 KiB, ``RLIMIT_FSIZE``: a write fails part-way as on a full disk; the
sandbox's credentials file fits, the rebate file of 80 fills does not).

While the disk is full the file stays ``ongoing`` (listed as such, no link), no partial file is left
in the directory, the clock advance answers 200 and the periodic jobs go on. Once there is room again
(the server restarted without the limit), the next job tick writes the file, whole, exactly once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.api.test_broker_api import make_broker, ok, okx
from tests.api.test_rebate_files import ask, download, rows_of
from tests.api.test_trading_broker import buy, fixed_price, funded_sub
from tests.stack import ADMIN_TOKEN, start_server_process, start_stack

FILLS = 80
LIMIT = 4096


def job_runs(base: str) -> set[tuple[str, str]]:
    history = httpx.get(base + "/admin/jobs?limit=1000", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    return {(j["job"], j["period"]) for j in history if j["job"] != "market"}


def advance(base: str, **by: int) -> httpx.Response:
    return httpx.post(base + "/admin/clock/advance", json=by, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=60)


def test_a_full_disk_delays_a_rebate_file_and_loses_nothing(make_db: Callable[[str], str]) -> None:
    files = Path(tempfile.mkdtemp(prefix="stakehouse-full-"))
    stack = start_stack(make_db("postgres"), files_dir=str(files), job_poll_seconds=3600)
    broker = make_broker(stack, funds={"USDT": "1"})
    sub = funded_sub(stack, broker, "50000")
    fixed_price(stack, "BTC-USDT", "60000")
    fills = [buy(stack, sub, "0.002") for _ in range(FILLS)]
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # the ND rebate run at 00:00 HKT
    record = stack.call("GET", f"/admin/brokers/{broker.uid}/rebates")[0]
    asked = ask(stack, broker, record["day"], record["rebateDate"])
    assert asked["code"] == "0", asked

    db = stack.services.settings.database_url
    key = stack.services.settings.server_key
    proc, base = start_server_process(db, key, max_file_bytes=LIMIT, STAKEHOUSE_FILES_DIR=str(files),
                                      STAKEHOUSE_JOB_POLL_SECONDS="3600", STAKEHOUSE_KEY_EXPIRY_ENABLED="true")
    try:
        r = advance(base, seconds=1)  # the file is due: its write fails
        assert r.status_code == 200, r.text
        before = job_runs(base)
        r = advance(base, seconds=7200)  # and the jobs go on meanwhile (the hourly key expiry here)
        assert r.status_code == 200, r.text
        assert len({period for job, period in job_runs(base) - before if job == "api_key_expiry"}) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    pending = ok(okx(stack, broker).privateGetBrokerNdRebatePerOrders, {"type": "true"})
    assert [(f["state"], f["fileHref"]) for f in pending] == [("ongoing", "")]
    assert list(files.iterdir()) == []  # no partial file, no temporary left behind

    proc, base = start_server_process(db, key, STAKEHOUSE_FILES_DIR=str(files), STAKEHOUSE_JOB_POLL_SECONDS="3600")
    try:
        r = advance(base, seconds=1)  # room again: the next tick writes it
        assert r.status_code == 200, r.text
        assert any(j["job"] == "rebate_files" for j in r.json()["jobsRun"]), r.json()
        r = advance(base, seconds=1)
        assert not any(j["job"] == "rebate_files" for j in r.json()["jobsRun"]), r.json()  # once
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    listed = ok(okx(stack, broker).privateGetBrokerNdRebatePerOrders,
                {"type": "false", "begin": record["day"], "end": record["rebateDate"]})
    assert [f["state"] for f in listed] == ["finished"]
    got = download(listed[0]["fileHref"])
    assert got.status_code == 200
    rows = rows_of(got.text)
    assert sorted(r["ordId"] for r in rows) == sorted(f["ordId"] for f in fills)
    assert len(got.content) > LIMIT  # the whole file, past the size the full disk allowed
    assert [p.name for p in files.iterdir()] == [listed[0]["fileHref"].split("?")[0].rsplit("/", 1)[1]]
    stack.audit_ok()
    stack.stop()
