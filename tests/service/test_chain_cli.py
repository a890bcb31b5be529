"""The operator's ``stakehouse chain ...`` and ``stakehouse withdrawals ...`` commands over a real
database (SQLite and PostgreSQL): chain settings, a simulated deposit moving as the clock
advances, and a withdrawal failed with its refund. The users' own calls go through the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from stakehouse.config import Settings
from stakehouse.funding.withdrawals import WithdrawalRequest
from stakehouse.ledger.rules import FUNDING
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.service.test_staking_cli import fails, run


def test_chain_and_withdrawal_commands(backend: str, make_db: Callable[[str], str]) -> None:
    db, key = make_db(backend), new_server_key()
    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        svc.sandbox_clock.freeze()  # type: ignore[union-attr]
        master = svc.accounts.create_user(kyc_level=2).uid
        svc.broker.set_broker(master, level=1)
        sub = svc.broker.create_sub(master, sub_name="cliChain01")
        address = svc.chain.create_address(master, "cliChain01", "ETH")
    finally:
        svc.close()

    eth = run("chain", "list", "--ccy", "ETH", db=db, key=key)
    assert [(c["chain"], c["addressFormat"]) for c in eth] == [("ETH-ERC20", "evm")]
    changed = run("chain", "set", "ETH-ERC20", "--confirmations", "2", "--unlock-confirmations", "3",
                  "--block-seconds", "10", "--fee", "0.001", db=db, key=key)
    assert (changed["confirmations"], changed["unlockConfirmations"], changed["blockSeconds"], changed["fee"]) == (
        2, 3, 10, "0.001")
    assert "unlock" in fails("chain", "set", "ETH-ERC20", "--unlock-confirmations", "1", db=db, key=key).lower()
    assert run("chain", "list", "--ccy", "ETH", db=db, key=key)[0]["unlockConfirmations"] == 3  # unchanged

    owner = run("chain", "address", address.addr, db=db, key=key)
    assert [(a["uid"], a["ccy"]) for a in owner] == [(sub.uid, "ETH")]
    sent = run("chain", "deposit", address.addr, "--ccy", "ETH", "--amt", "1.5", db=db, key=key)
    assert (sent["state"], sent["confirmations"], sent["creditConfirmations"]) == ("0", 0, 2)
    assert "does not exist" in fails("chain", "show-deposit", "999999", db=db, key=key)

    run("clock", "advance", "--seconds", "25", db=db, key=key)  # 2 blocks: credited, 3 not yet
    shown = run("chain", "show-deposit", sent["depId"], db=db, key=key)
    assert (shown["state"], shown["confirmations"], shown["acctType"]) == ("1", 2, "6")

    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        assert svc.assets.balances(sub.uid, FUNDING, ["ETH"])[0].available == Decimal("1.5")
        wd = svc.withdrawals.withdraw(sub.uid, WithdrawalRequest(
            ccy="ETH", amt=Decimal("1"), dest=4, to_addr="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"))
        now = svc.clock.now()
    finally:
        svc.close()

    listed = run("withdrawals", "list", "--uid", sub.uid, db=db, key=key)
    assert [(w["wdId"], w["state"], w["amt"], w["fee"]) for w in listed] == [(wd.wd_id, "0", "1", "0.001")]
    assert "reason" in fails("withdrawals", "fail", wd.wd_id, "--reason", " ", db=db, key=key)
    failed = run("withdrawals", "fail", wd.wd_id, "--reason", "node rejected the transaction", db=db, key=key)
    assert (failed["state"], failed["note"]) == ("-1", "node rejected the transaction")
    assert run("withdrawals", "show", wd.wd_id, db=db, key=key)["completedAt"] == now.isoformat()
    assert "not allowed" in fails("withdrawals", "fail", wd.wd_id, "--reason", "again", db=db, key=key)

    svc = Services(Settings(database_url=db, server_key=key, sandbox=True))
    try:
        funding = svc.assets.balances(sub.uid, FUNDING, ["ETH"])[0]
        assert (funding.available, funding.locked) == (Decimal("1.5"), Decimal(0))  # refunded, fee too
        assert svc.clock.now() - now < dt.timedelta(seconds=1)
        assert svc.audit().ok
    finally:
        svc.close()
