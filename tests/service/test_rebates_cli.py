"""The operator's ``stakehouse rebates ...`` and ``stakehouse dcd ...`` commands over a real
database (SQLite and PostgreSQL): JSON out, exit code 2 and ``error: ...`` for bad input, nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.service.test_staking_cli import fails, run


def test_rebate_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        master = svc.accounts.create_user(kyc_level=2)
        svc.broker.set_broker(master.uid, level=2)
        sub = svc.accounts.create_sub_account(parent_uid=master.uid, sub_name="clirebate")
        assert run("rebates", "settings", db=db, key=key) == {
            "ratios": {"1": "0.4", "2": "0.4", "3": "0.4", "4": "0.4", "5": "0.4"}, "monthlyCaps": {}}
        assert run("rebates", "ratio", "2", "0.55", db=db, key=key) == {"level": "2", "ratio": "0.55"}
        assert "ratio" in fails("rebates", "ratio", "2", "1.01", db=db, key=key)
        assert run("rebates", "cap", "VIP4", "250", db=db, key=key) == {"level": "VIP4", "monthlyCap": "250"}
        assert "level" in fails("rebates", "cap", "Lv1", "250", db=db, key=key)
        assert run("rebates", "settings", db=db, key=key)["monthlyCaps"] == {"VIP4": "250"}
        assert run("rebates", "cap", "VIP4", db=db, key=key) == {"level": "VIP4", "monthlyCap": ""}
        assert run("rebates", "vip-mode", sub.uid, db=db, key=key) == {"uid": sub.uid, "on": True}
        assert "sub-accounts" in fails("rebates", "vip-mode", master.uid, db=db, key=key)
        assert run("rebates", "records", master.uid, db=db, key=key) == []
        assert svc.rebates.settings()[0][2] == Decimal("0.55")  # what the command stored is what the run reads
    finally:
        svc.close()


def test_fd_broker_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        master = svc.accounts.create_user(kyc_level=2)
        user = svc.accounts.create_user(kyc_level=2)
        svc.broker.set_broker(master.uid, level=1)
        sub = svc.accounts.create_sub_account(parent_uid=master.uid, sub_name="clifdsub")
        made = run("rebates", "fd-set", master.uid, "0.3", "--client-ratio", "0.25", "--types", "api,oauth",
                   "--code", "6099c63a8d75SCDE", db=db, key=key)
        assert made == {"uid": master.uid, "brokerCode": "6099c63a8d75SCDE", "types": ["api", "oauth"],
                        "ratio": "0.3", "clientRebateRatio": "0.25", "expired": False}
        # a change keeps the code when none is given
        assert run("rebates", "fd-set", master.uid, "0.35", db=db, key=key)["brokerCode"] == "6099c63a8d75SCDE"
        assert "code" in fails("rebates", "fd-set", user.uid, "0.3", "--code", "short", db=db, key=key)
        assert "types" in fails("rebates", "fd-set", user.uid, "0.3", "--types", "web", db=db, key=key)
        assert "ratio" in fails("rebates", "fd-set", user.uid, "1.5", db=db, key=key)
        assert "another broker" in fails("rebates", "fd-set", user.uid, "0.3", "--code", "6099c63a8d75SCDE", db=db,
                                         key=key)
        assert "master" in fails("rebates", "fd-set", sub.uid, "0.3", db=db, key=key)
        assert run("rebates", "fd-expired", master.uid, db=db, key=key)["expired"] is True
        assert run("rebates", "fd-expired", master.uid, "--valid", db=db, key=key)["expired"] is False
        assert run("rebates", "fd-affiliate", master.uid, user.uid, db=db, key=key) == {
            "uid": master.uid, "user": user.uid, "affiliated": True}
        assert "FD broker" in fails("rebates", "fd-affiliate", user.uid, master.uid, db=db, key=key)
        assert [b["uid"] for b in run("rebates", "fd-list", db=db, key=key)] == [master.uid]
        assert run("rebates", "fd-records", master.uid, db=db, key=key) == []
        assert svc.fd_brokers.get(master.uid).ratio == Decimal("0.35")  # what the run reads
    finally:
        svc.close()


def test_dcd_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        listed = run("dcd", "series", db=db, key=key)
        assert [(s["ccy"], s["altCcy"]) for s in listed] == [("BTC", "USDT"), ("ETH", "USDT")]  # the sandbox's
        got = run("dcd", "set-series", "BTC", "USDT", "--setting", "vol=0.6", "--setting", "tenors=1,7",
                  "--setting", "enabled=false", db=db, key=key)
        assert (got["vol"], got["tenors"], got["enabled"]) == ("0.6", "1,7", False)
        assert "tenors" in fails("dcd", "set-series", "BTC", "USDT", "--setting", "tenors=0", db=db, key=key)
        assert "strikePcts" in fails("dcd", "set-series", "BTC", "USDT", "--setting", "strikePcts=5,x", db=db,
                                     key=key)
        assert "margin" in fails("dcd", "set-series", "BTC", "USDT", "--setting", "margin=1", db=db, key=key)
        assert "bogus" in fails("dcd", "set-series", "BTC", "USDT", "--setting", "bogus=1", db=db, key=key)
        assert "spot market" in fails("dcd", "set-series", "DOGE", "USDT", db=db, key=key)
        assert run("dcd", "book", db=db, key=key) == []
        assert [s["vol"] for s in svc.dcd.series() if s["ccy"] == "BTC"] == [Decimal("0.6")]  # what the listing reads
    finally:
        svc.close()
