"""A deposit from broadcast to success through the sandbox chain simulator, seen through ccxt.okx
(broker deposit history, the sub-account's own history and balances), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from stakehouse.funding.addresses import new_address
from tests.api.test_clients import ccxt_okx
from tests.api.test_deposit_addresses import Broker, code_of, create, make_broker
from tests.stack import Stack


def history(b: Broker, **params: str) -> list[dict[str, Any]]:
    reply = b.ex.privateGetAssetBrokerNdSubaccountDepositHistory(params)
    assert reply["code"] == "0", reply
    rows: list[dict[str, Any]] = reply["data"]
    return rows


def advance(stack: Stack, seconds: int) -> list[dict[str, Any]]:
    ran: list[dict[str, Any]] = stack.call("POST", "/admin/clock/advance", json={"seconds": seconds})["jobsRun"]
    return ran


def send(stack: Stack, **body: str) -> httpx.Response:
    return stack.admin.post("/admin/chain/deposits", json=body)


def credits(stack: Stack, uid: str) -> list[dict[str, Any]]:
    return [p for p in stack.call("GET", f"/admin/users/{uid}/journal") if p["type"] == "deposit"]


def test_a_deposit_from_broadcast_to_success(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    assert stack.services.sandbox_clock is not None
    stack.services.sandbox_clock.freeze()
    chain = stack.call("PUT", "/admin/chains/ETH-ERC20",
                       json={"confirmations": 3, "unlockConfirmations": 6, "blockSeconds": 10})
    assert (chain["confirmations"], chain["unlockConfirmations"], chain["blockSeconds"]) == (3, 6, 10)
    b = make_broker(stack)
    sub, sub_uid = b.subs[0], b.sub_uids[0]
    addr = create(b, subAcct=sub, ccy="ETH")["addr"]
    sender = new_address("evm")
    r = send(stack, addr=addr, ccy="ETH", amt="1.5", fromAddr=sender)
    assert r.status_code == 200, r.text
    dep = r.json()
    assert (dep["state"], dep["confirmations"], dep["uid"], dep["to"]) == ("0", 0, sub_uid, addr)
    dep_id, tx_id = dep["depId"], dep["txId"]
    assert tx_id.startswith("0x") and len(tx_id) == 66

    def row() -> dict[str, Any]:
        rows = history(b, subAcct=sub)
        assert len(rows) == 1
        return rows[0]

    seen = row()
    assert {k: seen[k] for k in ("subAcct", "ccy", "chain", "amt", "from", "to", "txId", "state", "depId",
                                 "actualDepBlkConfirm")} == {
        "subAcct": sub, "ccy": "ETH", "chain": "ETH-ERC20", "amt": "1.5", "from": "", "to": addr, "txId": tx_id,
        "state": "0", "depId": dep_id, "actualDepBlkConfirm": "0"}
    assert seen["areaCodeFrom"] == "" and seen["ts"].isdigit()
    # confirmations grow with the clock; nothing is credited before the chain's count
    for seconds, confirmations in ((10, "1"), (15, "2")):
        advance(stack, seconds)
        assert (row()["state"], row()["actualDepBlkConfirm"]) == ("0", confirmations)
        assert stack.balances(sub_uid) == {}
    advance(stack, 5)  # 30 s: 3 confirmations, credited to the funding account (the address's `to`)
    assert (row()["state"], row()["actualDepBlkConfirm"]) == ("1", "3")
    assert stack.balances(sub_uid) == {("6", "ETH"): Decimal("1.5")}
    # the sub-account's own key sees the same deposit in its history
    sub_ex = ccxt_okx(stack, stack.add_key(sub_uid, env="live"))
    own = sub_ex.privateGetAssetDepositHistory({"ccy": "ETH"})["data"]
    assert [(d["depId"], d["state"], d["actualDepBlkConfirm"], d["from"]) for d in own] == [
        (dep_id, "1", "3", sender)]
    advance(stack, 20)  # 50 s: 5 of 6
    assert (row()["state"], row()["actualDepBlkConfirm"]) == ("1", "5")
    advance(stack, 10)  # 60 s: successful
    assert (row()["state"], row()["actualDepBlkConfirm"]) == ("2", "6")
    advance(stack, 3600)
    assert row()["actualDepBlkConfirm"] == "6"

    # the beneficiary set to trading: the next deposit lands in the trading account
    reply = b.ex.privatePostAssetBrokerNdModifySubaccountDepositAddress(
        {"subAcct": sub, "ccy": "ETH", "addr": addr, "to": "18"})
    assert reply["code"] == "0"
    second = send(stack, addr=addr, ccy="ETH", amt="0.25").json()
    advance(stack, 30)
    assert stack.balances(sub_uid) == {("6", "ETH"): Decimal("1.5"), ("18", "ETH"): Decimal("0.25")}
    assert stack.call("GET", f"/admin/chain/deposits/{second['depId']}")["acctType"] == "18"

    # exactly once: more advances, polling runs, racing pollers
    for _ in range(3):
        advance(stack, 120)
        stack.services.runner.run_due()
    threads = [threading.Thread(target=stack.services.runner.run_due) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stack.balances(sub_uid) == {("6", "ETH"): Decimal("1.5"), ("18", "ETH"): Decimal("0.25")}
    assert len(credits(stack, sub_uid)) == 2
    assert [r["state"] for r in history(b)] == ["2", "2"]
    stack.audit_ok()


def test_racing_pollers_credit_once(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    svc = stack.services
    assert svc.sandbox_clock is not None
    svc.sandbox_clock.freeze()
    stack.call("PUT", "/admin/chains/USDT-TRC20", json={"confirmations": 1, "unlockConfirmations": 2,
                                                         "blockSeconds": 3})
    b = make_broker(stack)
    addr = create(b, subAcct=b.subs[0], ccy="USDT")["addr"]
    for amt in ("1", "2", "3", "4"):
        assert send(stack, addr=addr, ccy="USDT", amt=amt).status_code == 200
    svc.sandbox_clock.set_to(svc.clock.now() + dt.timedelta(seconds=10))
    threads = [threading.Thread(target=svc.runner.run_due) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stack.balances(b.sub_uids[0]) == {("6", "USDT"): Decimal(10)}
    assert len(credits(stack, b.sub_uids[0])) == 4
    assert {r["state"] for r in history(b)} == {"2"}
    stack.audit_ok()


def test_history_filters_and_paging(stack: Stack) -> None:
    b = make_broker(stack, subs=2)
    a0 = create(b, subAcct=b.subs[0], ccy="SOL")["addr"]
    a1 = create(b, subAcct=b.subs[1], ccy="USDT")["addr"]
    sent = [send(stack, addr=a0, ccy="SOL", amt="1").json(), send(stack, addr=a1, ccy="USDT", amt="5").json(),
            send(stack, addr=a0, ccy="SOL", amt="2").json()]
    rows = history(b)
    assert [r["depId"] for r in rows] == [d["depId"] for d in reversed(sent)]  # newest first, both sub-accounts
    assert {r["subAcct"] for r in rows} == set(b.subs)
    assert [r["amt"] for r in history(b, subAcct=b.subs[0])] == ["2", "1"]
    assert [r["ccy"] for r in history(b, ccy="USDT")] == ["USDT"]
    assert [r["depId"] for r in history(b, txId=sent[1]["txId"])] == [sent[1]["depId"]]
    assert history(b, type="3") == [] and len(history(b, type="4")) == 3
    assert len(history(b, limit="2")) == 2
    assert history(b, state="12") == []
    ts = int(rows[1]["ts"])
    assert all(int(r["ts"]) < ts for r in history(b, after=str(ts)))
    assert all(int(r["ts"]) > ts for r in history(b, before=str(ts)))
    for params, code in (({"state": "5"}, "51000"), ({"type": "1"}, "51000"), ({"limit": "101"}, "51000"),
                         ({"after": "abc"}, "51000"), ({"subAcct": "nobodyHere1"}, "59510")):
        assert code_of(b.ex.privateGetAssetBrokerNdSubaccountDepositHistory, params) == code, params


@pytest.mark.parametrize(("body", "status"), [
    ({"ccy": "ETH", "amt": "0.00000001"}, 200),  # at the ETH-ERC20 minimum, fine
    ({"ccy": "ETH", "amt": "0.000000009"}, 400),  # below it
    ({"ccy": "USDT", "amt": "0.01"}, 400),  # below the chain's minimum deposit
    ({"ccy": "USDT", "chain": "USDT-Nowhere", "amt": "1"}, 400),
    ({"ccy": "ETH", "amt": "0"}, 400),
    ({"ccy": "ETH", "amt": "1e3"}, 400),
    ({"ccy": "ETH", "amt": "1", "fromAddr": "0x123"}, 400),
])
def test_bad_sends_are_refused_and_change_nothing(stack: Stack, body: dict[str, str], status: int) -> None:
    b = make_broker(stack)
    eth = create(b, subAcct=b.subs[0], ccy="ETH")["addr"]
    usdt = create(b, subAcct=b.subs[0], ccy="USDT")["addr"]
    r = send(stack, addr=eth if body["ccy"] == "ETH" else usdt, **body)
    assert r.status_code == status, r.text
    assert len(history(b)) == (1 if status == 200 else 0)
    # not one of our addresses
    assert send(stack, addr=new_address("evm"), ccy="ETH", amt="1").status_code == 404
    assert len(history(b)) == (1 if status == 200 else 0)
    stack.audit_ok()


def test_suspended_chain_and_frozen_account(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    b = make_broker(stack)
    addr = create(b, subAcct=b.subs[0], ccy="BTC")["addr"]
    stack.call("PUT", "/admin/chains/BTC-Bitcoin", json={"canDep": False})
    assert send(stack, addr=addr, ccy="BTC", amt="1").status_code == 400
    stack.call("PUT", "/admin/chains/BTC-Bitcoin", json={"canDep": True})
    for bad in ({"confirmations": 0}, {"confirmations": 3, "unlockConfirmations": 2}, {"fee": "-1"},
                {"minDep": "0"}, {"blockSeconds": 0}, {"minWd": "10", "maxWd": "5"}, {"fee": "0.000000001"}):
        assert stack.admin.put("/admin/chains/BTC-Bitcoin", json=bad).status_code == 400, bad
    assert stack.admin.put("/admin/chains/NOPE-Chain", json={"fee": "1"}).status_code == 404
    chain = stack.call("GET", "/admin/chains", params={"ccy": "BTC"})[0]
    assert (chain["confirmations"], chain["unlockConfirmations"], chain["fee"]) == (1, 2, "0.0002")
    # a user frozen for deposits: state 12, never credited
    stack.call("POST", f"/admin/users/{b.sub_uids[0]}/freeze", json={"functions": ["deposit"]})
    dep = send(stack, addr=addr, ccy="BTC", amt="0.5").json()
    assert dep["state"] == "12"
    advance(stack, 3 * 3600)
    assert [(r["depId"], r["state"]) for r in history(b)] == [(dep["depId"], "12")]
    assert stack.balances(b.sub_uids[0]) == {}
    stack.audit_ok()
