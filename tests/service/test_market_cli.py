"""The operator's ``stakehouse market|fee-levels|credits ...`` commands over a real database
(SQLite and PostgreSQL): JSON out, exit code 2 and ``error: ...`` for bad input, nothing changed.

Each command is a process start, so one scenario walks every command once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from stakehouse.clock import to_ms
from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.service.test_staking_cli import fails, run


def test_market_fee_level_and_credit_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        svc.sandbox_clock.freeze()  # type: ignore[union-attr]
        master = svc.accounts.create_user(kyc_level=2)
        svc.broker.set_broker(master.uid, level=1)
        sub = svc.accounts.create_sub_account(parent_uid=master.uid, sub_name="clitrader")

        listed = run("market", "list", db=db, key=key)
        btc = next(m for m in listed if m["instId"] == "BTC-USDT")
        assert (btc["walk"], btc["px"]) == (True, "60000")
        changed = run("market", "set", "btc-usdt", "--vol", "0.25", "--no-walk", "--book-levels", "3", db=db, key=key)
        assert (changed["vol"], changed["walk"], changed["bookLevels"]) == ("0.25", False, 3)
        assert "vol" in fails("market", "set", "BTC-USDT", "--vol", "11", db=db, key=key)
        assert run("market", "list", db=db, key=key) == [changed if m["instId"] == "BTC-USDT" else m for m in listed]

        pinned = run("market", "price", "BTC-USDT", "61234.5", db=db, key=key)
        assert (pinned["instId"], pinned["px"]) == ("BTC-USDT", "61234.5")
        assert "Instrument" in fails("market", "price", "DOGE-USDT", "1", db=db, key=key)
        assert "px" in fails("market", "price", "BTC-USDT", "1e3", db=db, key=key)

        xrp = run("market", "instrument", "xrp-usdt", "--setting", "baseCcy=XRP", "--setting", "quoteCcy=USDT",
                  "--setting", "tickSz=0.0001", "--setting", "lotSz=0.01", "--setting", "minSz=1",
                  "--setting", "startPx=0.5", db=db, key=key)
        assert (xrp["instId"], xrp["tickSz"], xrp["startPx"], xrp["state"]) == ("XRP-USDT", "0.0001", "0.5", "live")
        assert [m["px"] for m in run("market", "list", db=db, key=key) if m["instId"] == "XRP-USDT"] == ["0.5"]
        assert "startPx" in fails("market", "instrument", "SOL-BTC", "--setting", "baseCcy=SOL", "--setting",
                                  "quoteCcy=BTC", "--setting", "tickSz=0.0001", "--setting", "lotSz=0.01",
                                  "--setting", "minSz=1", db=db, key=key)
        assert run("market", "instrument", "XRP-USDT", "--setting", "state=suspend", db=db, key=key)["state"] == \
            "suspend"

        levels = run("fee-levels", "list", db=db, key=key)
        assert levels[0] == {"level": "Lv1", "taker": "0.001", "maker": "0.0008"} and len(levels) == 9
        assert run("fee-levels", "set", "VIP2", "0.0004", "0.0002", db=db, key=key) == {
            "level": "VIP2", "taker": "0.0004", "maker": "0.0002"}
        assert "taker" in fails("fee-levels", "set", "VIP2", "0.5", "0.0002", db=db, key=key)
        assert "level" in fails("fee-levels", "set", "VIP9", "0.001", "0.001", db=db, key=key)
        assert run("fee-levels", "assign", sub.uid, "VIP2", db=db, key=key) == {"uid": sub.uid, "level": "VIP2"}
        assert svc.trading.account_level(sub.uid) == "VIP2"

        deadline = str(to_ms(svc.clock.now()) + 86_400_000)
        credit = run("credits", "grant", sub.uid, "25", "--activate-exp-time", deadline, "--valid-period",
                     "604800000", db=db, key=key)
        assert (credit["uid"], credit["amt"], credit["used"], credit["state"]) == (sub.uid, "25", "0", "unactivated")
        assert "sub-account" in fails("credits", "grant", master.uid, "25", "--activate-exp-time", deadline,
                                      "--valid-period", "604800000", db=db, key=key)
        assert "amt" in fails("credits", "grant", sub.uid, "0.0000001", "--activate-exp-time", deadline,
                              "--valid-period", "604800000", db=db, key=key)
        assert run("credits", "list", "--uid", sub.uid, db=db, key=key) == [credit]
        gone = run("credits", "invalidate", credit["creditId"], db=db, key=key)
        assert gone["state"] == "invalid" and gone["invalidTime"]
        assert "already invalid" in fails("credits", "invalidate", credit["creditId"], db=db, key=key)
        assert svc.credits.list(sub.uid)[0].amt == Decimal(25)
    finally:
        svc.close()
