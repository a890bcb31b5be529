"""The operator's ``stakehouse rebates ...`` commands over a real database (SQLite and PostgreSQL):
JSON out, exit code 2 and ``error: ...`` for bad input, nothing changed."""

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
