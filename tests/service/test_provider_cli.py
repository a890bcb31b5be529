"""The operator's ``stakehouse providers|prices|gemini-keys ...`` commands over a real database
(SQLite and PostgreSQL): JSON out, exit code 2 and ``error: ...`` for bad input, nothing changed.

Each command is a process start (~1.5 s), so one scenario walks every command once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal

from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.service.test_cli import cli
from tests.service.test_staking_cli import fails, run


def test_provider_price_and_gemini_key_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        svc.sandbox_clock.freeze()  # type: ignore[union-attr]
        master = svc.accounts.create_user(kyc_level=2)
        sub = svc.accounts.create_sub_account(parent_uid=master.uid, sub_name="clisub")
        svc.chain.credit_deposit(master.uid, "ETH", Decimal("5"))
        day0 = svc.provider_staking.today()
        day1 = day0 + dt.timedelta(days=1)

        # providers
        pid = str(uuid.uuid4())
        created = run("providers", "create", "CLI Validators", "--id", pid.upper(), db=db, key=key)
        assert created == {"providerNo": 1, "providerId": pid, "name": "CLI Validators"}
        assert "exists already" in fails("providers", "create", "Again", "--id", pid, db=db, key=key)
        assert run("providers", "list", db=db, key=key) == [created]

        # products: every kind of setting from NAME=VALUE text
        offered = run("providers", "offer", pid, "eth", "--setting", "precision=9", "--setting", "min_stake=0.5",
                      "--setting", "unstake_mode=queued", "--setting", "daily_redemption_cap=100",
                      "--setting", "unbonding_days=2", "--setting", "deposit_usd_limit=none",
                      "--setting", "stake_enabled=true", db=db, key=key)
        assert offered == {"provider_no": 1, "provider_id": pid, "ccy": "ETH", "precision": 9,
                           "stake_enabled": True, "min_stake": "0.5", "deposit_usd_limit": None,
                           "unstake_mode": "queued", "daily_redemption_cap": "100", "unbonding_days": 2}
        message = fails("providers", "offer", pid, "ETH", "--setting", "min_stake=1", "--setting", "precision=19",
                        db=db, key=key)
        assert message.startswith("error: ") and "precision" in message and "0..18" in message
        assert run("providers", "products", db=db, key=key) == [offered]  # min_stake not applied either

        # rates (basis points) and prices
        assert run("providers", "rate", pid, "eth", day0.isoformat(), "540", db=db, key=key) == {
            "providerId": pid, "ccy": "ETH", "day": day0.isoformat(), "rate": "540", "ratePct": "5.4",
            "apyPct": "5.55"}
        assert [(r.ccy, r.rate_bps) for r in svc.provider_staking.rates()] == [("ETH", Decimal(540))]
        price = run("prices", "set", "eth", "3000.50", db=db, key=key)
        assert (price["ccy"], price["price"]) == ("ETH", "3000.5")
        assert "positive" in fails("prices", "set", "ETH", "--", "-3", db=db, key=key)  # "--": not an option
        assert [p for p in run("prices", "list", db=db, key=key) if p["ccy"] == "ETH"] == [price]

        # Gemini keys
        made = run("gemini-keys", "create", master.uid, "--role", "FundManager", "--role", "Trader", "--time-based",
                   "--ip", "203.0.113.7", "--label", "cli", db=db, key=key)
        assert (made["uid"], made["scope"], made["roles"], made["timeBasedNonce"], made["ips"], made["label"],
                made["revokedAt"]) == (master.uid, "account", ["Trader", "FundManager"], True, ["203.0.113.7"],
                                       "cli", None)
        assert made["apiKey"].startswith("account-") and made["secret"]
        assert "master account" in fails("gemini-keys", "create", sub.uid, "--scope", "master", db=db, key=key)
        assert svc.gemini_keys.list_keys(sub.uid) == []
        assert run("gemini-keys", "list", master.uid, db=db, key=key) == [
            {k: v for k, v in made.items() if k != "secret"}]
        revoked = run("gemini-keys", "revoke", made["apiKey"], db=db, key=key)
        assert revoked["apiKey"] == made["apiKey"] and revoked["revokedAt"] is not None
        assert svc.gemini_keys.list_keys(master.uid) == []

        # balances and interest runs: 2 ETH staked and 0.5 queued for unstaking during day0
        svc.provider_staking.stake(master.uid, pid, "ETH", Decimal("2"))
        svc.provider_staking.unstake(master.uid, pid, "ETH", Decimal("0.5"))
        svc.advance_clock(by=dt.timedelta(days=2))  # runs day0 (nothing eligible) and day1 (1.5 held all day)
        day1_interest = Decimal("0.000221917")  # 1.5 * 540 / 10000 / 365 = 0.000221917808..., 9 decimals
        runs = run("providers", "runs", "--limit", "5", db=db, key=key)
        assert [(r["providerId"], r["ccy"], r["day"], r["rate"], r["stakers"], r["total"]) for r in runs] == [
            (pid, "ETH", day1.isoformat(), "540", 1, str(day1_interest)),
            (pid, "ETH", day0.isoformat(), "540", 0, "0")]
        # the queued 0.5 was scheduled on day0 and is paid 2 days later: still pending
        assert run("providers", "balances", master.uid, db=db, key=key) == [
            {"providerId": pid, "ccy": "ETH", "balance": str(Decimal("1.5") + day1_interest),
             "pendingUnstake": "0.5"}]
        assert svc.audit().ok
    finally:
        svc.close()


def test_a_non_ascii_digit_in_an_integer_setting_is_an_error_not_a_traceback(make_db: Callable[[str], str]) -> None:
    """``providers offer --setting precision=²``: ``"²".isdigit()`` is true but ``int("²")`` raises,
    before the command's error handling."""
    db, key = make_db("sqlite"), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        pid = svc.provider_staking.create_provider("P").provider_id
    finally:
        svc.close()
    done = cli("providers", "offer", pid, "ETH", "--setting", "precision=\u00b2", db=db, key=key)
    assert done.returncode == 2 and "error: " in done.stderr and "precision" in done.stderr, (
        done.returncode, done.stderr[-300:])
