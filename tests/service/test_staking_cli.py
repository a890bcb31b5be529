"""The operator's ``stakehouse staking ...`` commands over a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.service.test_cli import cli


def run(*args: str, db: str, key: str) -> Any:
    done = cli(*args, db=db, key=key)
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout)


def fails(*args: str, db: str, key: str) -> str:
    done = cli(*args, db=db, key=key)
    assert done.returncode == 2, (args, done.returncode, done.stdout)
    return done.stderr


def test_staking_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        svc.sandbox_clock.freeze()  # type: ignore[union-attr]
        uid = svc.accounts.create_user(kyc_level=2, accept_terms=("ETH",)).uid
        svc.chain.credit_deposit(uid, "ETH", Decimal("10"))
        svc.staking.purchase(uid, "ETH", Decimal("4"))
        bought = svc.staking.purchase(uid, "ETH", Decimal("2"))
        today = svc.staking.today()
    finally:
        svc.close()

    listed = run("staking", "products", db=db, key=key)
    assert [p["product"] for p in listed] == ["ETH", "SOL"]
    assert listed[1]["fast_redemption_daily_limit"] == "240" and listed[1]["daily_redemption_cap"] is None
    assert run("staking", "products", "ETH", db=db, key=key) == listed[0]
    assert "does not exist" in fails("staking", "products", "XRP", db=db, key=key)

    assert run("staking", "set", "ETH", "daily_redemption_cap", "2.5", db=db, key=key)["daily_redemption_cap"] == "2.5"
    assert run("staking", "set", "ETH", "fast_redemption_enabled", "false", db=db,
               key=key)["fast_redemption_enabled"] is False
    assert "unknown setting bogus" in fails("staking", "set", "ETH", "bogus", "1", db=db, key=key)
    assert "a value is required" in fails("staking", "set", "ETH", "min_purchase", "none", db=db, key=key)
    assert "precision" in fails("staking", "set", "ETH", "precision", "99", db=db, key=key)
    assert run("staking", "products", "ETH", db=db, key=key)["precision"] == 8

    assert run("staking", "rate", "ETH", today.isoformat(), "0.0284", db=db, key=key) == {
        "product": "ETH", "day": today.isoformat(), "rate": "0.02840000"}
    assert "between 0 and 10" in fails("staking", "rate", "ETH", today.isoformat(), "--", "-0.5", db=db,
                                       key=key)  # "--": a negative number is not an option
    assert "at most 8 decimals" in fails("staking", "rate", "ETH", today.isoformat(), "0.123456789", db=db, key=key)
    assert "day" in fails("staking", "rate", "ETH", "31/01/2026", "0.01", db=db, key=key)
    assert [r["rate"] for r in run("staking", "rates", "ETH", "--days", "2", db=db, key=key)] == ["0.02840000"]

    svc = Services(Settings(database_url=db, server_key=key))
    try:
        queued = svc.staking.redeem(uid, "ETH", Decimal("3"))  # fast redemption is off: standard
    finally:
        svc.close()
    q = run("staking", "queue", "ETH", db=db, key=key)
    assert (q["dailyRedemptionCap"], q["capUsedToday"], q["unscheduledTotal"]) == ("2.5", "0", "3")
    assert [(i["ordId"], i["amt"], i["status"]) for i in q["queue"]] == [(queued.ord_id, "3", "pending")]
    assert "pending" in fails("staking", "reverse", queued.ord_id, "--reason", "no", db=db, key=key)

    assert run("staking", "runs", "ETH", db=db, key=key) == []
    moved = run("clock", "advance", "--days", "1", db=db, key=key)
    assert "staking_rewards:ETH" in [j["job"] for j in moved["jobsRun"]]
    runs = run("staking", "runs", "ETH", "--limit", "5", db=db, key=key)
    assert [(r["day"], r["rate"], r["holders"]) for r in runs] == [(today.isoformat(), "0.02840000", 0)]
    assert "reward run" in fails("staking", "rate", "ETH", today.isoformat(), "0.03", db=db, key=key)
    q = run("staking", "queue", "ETH", db=db, key=key)
    assert (q["capUsedPreviousDay"], q["queue"][0]["unscheduled"]) == ("2.5", "0.5")
    assert run("staking", "rewards", uid, "--product", "ETH", db=db, key=key) == []

    reversed_ = run("staking", "reverse", bought.ord_id, "--reason", "entered twice", db=db, key=key)
    assert (reversed_["status"], reversed_["reversalReason"]) == ("failed", "entered twice")
    assert run("staking", "order", bought.ord_id, db=db, key=key)["status"] == "failed"
    assert "failed" in fails("staking", "reverse", bought.ord_id, "--reason", "again", db=db, key=key)
    assert "does not exist" in fails("staking", "order", "424242", db=db, key=key)
    assert cli("staking", "reverse", bought.ord_id, db=db, key=key).returncode != 0  # --reason is required
    balances = {(b["acctType"], b["ccy"]): (b["available"], b["locked"])
                for b in run("users", "balances", uid, db=db, key=key)}
    # 10 ETH - 6 staked + 2 given back; 6 BETH - 2 burnt, 3 of the rest locked in the queued redemption
    assert (balances[("6", "ETH")], balances[("6", "BETH")]) == (("6", "0"), ("1", "3"))

    run("clock", "advance", "--days", "1", db=db, key=key)  # day 1: 1 free BETH all day at 2.84 % (carried)
    day1 = (today + dt.timedelta(days=1)).isoformat()
    assert run("staking", "rewards", uid, db=db, key=key) == [
        {"product": "ETH", "day": day1, "uid": uid, "eligible": "1", "gross": "0.0000778", "net": "0.0000778",
         "fee": "0"}]
    assert "does not exist" in fails("staking", "rewards", "1", db=db, key=key)
    audit = cli("audit", db=db, key=key)
    assert audit.returncode == 0, audit.stdout
