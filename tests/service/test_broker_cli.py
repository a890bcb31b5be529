"""The operator's ``stakehouse broker ...`` commands over a real database (SQLite and PostgreSQL),
with the broker's own calls made through the service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.service.test_staking_cli import fails, run


def test_broker_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        svc.sandbox_clock.freeze()  # type: ignore[union-attr]
        master = svc.accounts.create_user(kyc_level=2).uid
        plain = svc.accounts.create_user().uid
    finally:
        svc.close()

    marked = run("broker", "set", master, "--level", "2", db=db, key=key)
    assert (marked["level"], marked["maxSubAcctQty"], marked["subAcctQty"], marked["enabled"]) == (
        "lv2", "2000", "0", True)
    assert run("broker", "set", master, "--max-sub-accts", "1", db=db, key=key)["maxSubAcctQty"] == "1"
    assert "level" in fails("broker", "set", master, "--level", "9", db=db, key=key)
    assert "does not exist" in fails("broker", "sub-accounts", plain, db=db, key=key)

    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        sub = svc.broker.create_sub(master, sub_name="cliSub01", label="x")
        svc.broker.set_fee_rate(master, sub_name="cliSub01", chg_type="absolute", chg_taker="10")
        now = svc.clock.now()
    finally:
        svc.close()

    subs = run("broker", "sub-accounts", master, db=db, key=key)
    assert [(s["subAcct"], s["uid"], s["acctLv"], s["mainAcct"]) for s in subs] == [("cliSub01", sub.uid, "1", "")]
    listed = [b for b in run("broker", "list", db=db, key=key) if b["uid"] == master]
    assert listed[0]["subAcctQty"] == "1"
    history = run("broker", "fee-history", master, db=db, key=key)
    assert [(h["uid"], h["chgTaker"], h["chgMaker"]) for h in history] == [(sub.uid, "10", "")]
    effective = dt.datetime.fromisoformat(history[0]["effectiveAt"])
    assert run("broker", "fee-rate", sub.uid, "--at", now.isoformat(), db=db, key=key)["taker"]["rate"] == "0.001"
    later = run("broker", "fee-rate", sub.uid, "--at", effective.isoformat(), db=db, key=key)
    assert (later["taker"]["rate"], later["maker"]["rate"]) == ("0.002", "0.0008")
    assert "time zone" in fails("broker", "fee-rate", sub.uid, "--at", "2026-01-01T00:00:00", db=db, key=key)
    assert "instType" in fails("broker", "fee-rate", sub.uid, "--inst-type", "BOND", db=db, key=key)
    off = run("broker", "set", master, "--disabled", "--clear-max", db=db, key=key)
    assert (off["enabled"], off["maxSubAcctQty"]) == (False, "2000")
