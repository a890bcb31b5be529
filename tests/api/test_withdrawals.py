"""Withdrawals through ccxt.okx (``withdraw``, ``fetch_withdrawals``, implicit methods for cancel and
the ND broker's sub-account history) on SQLite and PostgreSQL: on chain from request to success
as the sandbox clock advances, failure and cancel with refunds, internal withdrawals, an ND
sub-account withdrawing with its own key, and every refusal changing nothing."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from sqlalchemy import select

from stakehouse.db.tables import deposits, ledger_accounts
from stakehouse.funding.addresses import new_address, platform_address
from stakehouse.funding.audit import CHECKS as AUDIT_CHECKS
from stakehouse.ledger.audit import run_audit
from tests.api.test_clients import ccxt_okx
from tests.stack import Creds, Stack

D = Decimal


# -- helpers --------------------------------------------------------------------------------


def books(stack: Stack, uid: str) -> dict[tuple[str, str], Decimal]:
    """Every balance of the user, available and locked, by (account type, ccy[:locked])."""
    out = {}
    for r in stack.call("GET", f"/admin/users/{uid}/balances"):
        out[(r["acctType"], r["ccy"])] = D(r["available"])
        out[(r["acctType"], r["ccy"] + ":locked")] = D(r["locked"])
    return out


def system(stack: Stack, name: str, ccy: str) -> Decimal:
    """A platform account's balance (``custody``, ``fees``)."""
    with stack.services.db.read() as conn:
        found = conn.execute(select(ledger_accounts.c.available).where(
            ledger_accounts.c.owner == f"s:{name}", ledger_accounts.c.ccy == ccy)).scalar_one_or_none()
    return D(found) if found is not None else D(0)


def admin_withdrawals(stack: Stack, uid: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = stack.call("GET", "/admin/withdrawals", params={"uid": uid})
    return rows


def state_of(stack: Stack, wd_id: str) -> dict[str, Any]:
    row: dict[str, Any] = stack.call("GET", f"/admin/withdrawals/{wd_id}")
    return row


def snapshot(stack: Stack, *uids: str) -> Any:
    """What a refusal must leave unchanged: balances, withdrawals and deposits of the users."""
    out = []
    for uid in uids:
        with stack.services.db.read() as conn:
            deps = conn.execute(select(deposits.c.dep_id).where(deposits.c.uid == uid)).scalars().all()
        out.append((books(stack, uid), admin_withdrawals(stack, uid), sorted(deps)))
    return out


def audit_ok(stack: Stack) -> None:
    """The whole audit, and the withdrawal invariants on their own (whether or not wired in)."""
    stack.audit_ok()
    with stack.services.db.read() as conn:
        report = run_audit(conn, AUDIT_CHECKS)
    assert report.ok and len(report.checks) >= 6, report.as_dict()


def refused(fn: Callable[..., Any], *args: Any) -> str:
    """The OKX code of a call ccxt raised on."""
    with pytest.raises(ccxt.BaseError) as info:
        fn(*args)
    text = str(info.value)
    body = json.loads(text[text.index("{"):])
    return str(body["code"])


def advance(stack: Stack, seconds: int) -> list[str]:
    """Move the sandbox clock; the withdrawals falling due move with it. The event sources and jobs run."""
    return [j["job"] for j in stack.call("POST", "/admin/clock/advance", json={"seconds": seconds})["jobsRun"]]


def frozen(fresh_stack: Callable[..., Stack]) -> Stack:
    stack = fresh_stack()
    assert stack.services.sandbox_clock is not None
    stack.services.sandbox_clock.freeze()
    return stack


def chain_of(stack: Stack, chain: str) -> Any:
    ccy = chain.split("-")[0]
    return next(c for c in stack.services.reference.chains([ccy]) if c.chain == chain)


def new_name() -> str:
    return "wd" + uuid.uuid4().hex[:12]


def broker_with_sub(stack: Stack, *, funds: dict[str, str] | None = None,
                    perms: tuple[str, ...] = ("read_only", "trade", "withdraw")) -> tuple[Creds, Creds, str]:
    """An ND broker (master key) and one of its sub-accounts (own key) named as returned."""
    broker = stack.new_user()
    stack.call("PUT", f"/admin/brokers/{broker.uid}", json={})
    name = new_name()
    sub = stack.call("POST", f"/admin/users/{broker.uid}/sub-accounts", json={"subAcct": name})
    return broker, stack.add_key(sub["uid"], env="live", funds=funds, perms=perms), name


EXPECTED_FIELDS = {"ccy", "chain", "amt", "ts", "from", "areaCodeFrom", "to", "areaCodeTo", "txId", "fee", "feeCcy",
                   "state", "wdId", "clientId", "nonTradableAsset", "toAddrType", "note"}


# -- on chain: request -> success ------------------------------------------------------------


def test_on_chain_withdrawal_from_request_to_success(fresh_stack: Callable[..., Stack]) -> None:
    stack = frozen(fresh_stack)
    c = stack.new_user(funds={"ETH": "2"})
    ex = ccxt_okx(stack, c)
    chain = chain_of(stack, "ETH-ERC20")
    fee, custody, fees = chain.fee, system(stack, "custody", "ETH"), system(stack, "withdrawal_fees", "ETH")
    addr = new_address("evm")

    made = ex.withdraw("ETH", 0.5, addr, {"clientId": "first1"})
    wd_id = made["id"]
    assert made["info"] == {"ccy": "ETH", "chain": "ETH-ERC20", "amt": "0.5", "wdId": wd_id, "clientId": "first1"}
    b = books(stack, c.uid)
    assert b[("6", "ETH")] == D("2") - D("0.5") - fee and b[("6", "ETH:locked")] == D("0.5") + fee

    # a retry with the same clientId is the same withdrawal; nothing moves again
    again = ex.privatePostAssetWithdrawal({"ccy": "ETH", "amt": "0.5", "dest": "4", "toAddr": addr,
                                           "clientId": "first1"})
    assert again["data"][0]["wdId"] == wd_id and books(stack, c.uid) == b
    assert refused(ex.privatePostAssetWithdrawal, {"ccy": "ETH", "amt": "0.6", "dest": "4", "toAddr": addr,
                                                   "clientId": "first1"}) == "51000"

    [row] = ex.privateGetAssetWithdrawalHistory()["data"]
    assert set(row) == EXPECTED_FIELDS
    assert (row["state"], row["txId"], row["fee"], row["feeCcy"], row["to"], row["from"], row["toAddrType"],
            row["nonTradableAsset"], row["clientId"]) == ("0", "", str(fee), "ETH", addr, c.uid, "1", False, "first1")
    assert [(w["id"], w["status"], w["amount"]) for w in ex.fetch_withdrawals("ETH")] == [(wd_id, "pending", 0.5)]

    review = stack.services.settings.withdrawal_review_seconds
    advance(stack, review - 1)
    assert state_of(stack, wd_id)["state"] == "0"
    # approved and broadcast at once, with a transaction id (the market's minute step may share the second)
    assert [j for j in advance(stack, 1) if j != "market"] == ["chain_withdrawals"]
    broadcast = ex.fetch_withdrawal(wd_id)
    assert broadcast["info"]["state"] == "1" and re.fullmatch(r"0x[0-9a-f]{64}", broadcast["txid"])
    assert ex.privateGetAssetWithdrawalHistory({"txId": broadcast["txid"]})["data"][0]["wdId"] == wd_id
    settle = chain.confirmations * chain.block_seconds
    advance(stack, settle - 1)
    assert state_of(stack, wd_id)["state"] == "1" and books(stack, c.uid) == b
    advance(stack, 1)
    done = ex.fetch_withdrawal(wd_id)
    assert (done["status"], done["txid"]) == ("ok", broadcast["txid"])
    assert state_of(stack, wd_id)["confirmations"] == chain.confirmations
    b = books(stack, c.uid)
    assert b[("6", "ETH")] == D("2") - D("0.5") - fee and b[("6", "ETH:locked")] == 0
    assert system(stack, "custody", "ETH") == custody + D("0.5")
    assert system(stack, "withdrawal_fees", "ETH") == fees + fee

    # the final states refuse a cancel; the admin cannot fail a success
    assert refused(ex.privatePostAssetCancelWithdrawal, {"wdId": wd_id}) == "58216"
    r = stack.admin.post(f"/admin/withdrawals/{wd_id}/fail", json={"reason": "too late"})
    assert r.status_code == 400 and books(stack, c.uid) == b
    audit_ok(stack)


# -- failure and cancel: refunds ------------------------------------------------------------


def test_failure_and_cancel_refund_the_hold(fresh_stack: Callable[..., Stack]) -> None:
    stack = frozen(fresh_stack)
    c = stack.new_user(funds={"USDT": "100"})
    other = stack.new_user(funds={"USDT": "100"})
    ex = ccxt_okx(stack, c)
    start = books(stack, c.uid)
    to = new_address("tron")

    first = ex.withdraw("USDT", 20, to, {"network": "TRC20"})["id"]
    second = ex.withdraw("USDT", 30, to, {"network": "TRC20"})["id"]
    assert books(stack, c.uid)[("6", "USDT")] == D("100") - D("20") - D("30") - 2 * chain_of(stack, "USDT-TRC20").fee

    # cancel before the broadcast: state -2, funds back at once
    assert ex.privatePostAssetCancelWithdrawal({"wdId": first})["data"] == [{"wdId": first}]
    assert state_of(stack, first)["state"] == "-2"
    assert books(stack, c.uid)[("6", "USDT:locked")] == D("30") + chain_of(stack, "USDT-TRC20").fee
    assert refused(ex.privatePostAssetCancelWithdrawal, {"wdId": first}) == "58216"  # already canceled

    # unknown and someone else's withdrawals are both "does not exist"
    before = snapshot(stack, c.uid, other.uid)
    assert refused(ex.privatePostAssetCancelWithdrawal, {"wdId": "999999999"}) == "58215"
    assert refused(ex.privatePostAssetCancelWithdrawal, {"wdId": "x1"}) == "58215"
    assert refused(ccxt_okx(stack, other).privatePostAssetCancelWithdrawal, {"wdId": second}) == "58215"
    assert refused(ex.privatePostAssetCancelWithdrawal, {}) == "50014"
    assert snapshot(stack, c.uid, other.uid) == before

    advance(stack, stack.services.settings.withdrawal_review_seconds)
    assert state_of(stack, second)["state"] == "1"
    held = books(stack, c.uid)
    assert refused(ex.privatePostAssetCancelWithdrawal, {"wdId": second}) == "58216"  # broadcast: too late
    assert books(stack, c.uid) == held and state_of(stack, second)["state"] == "1"

    # the operator fails it while broadcasting: state -1, the reason as note, funds back
    failed = stack.call("POST", f"/admin/withdrawals/{second}/fail", json={"reason": "rejected by the chain"})
    assert (failed["state"], failed["note"]) == ("-1", "rejected by the chain")
    assert books(stack, c.uid) == {**start, ("6", "USDT:locked"): D(0)}
    rows = ex.privateGetAssetWithdrawalHistory()["data"]
    assert [(r["wdId"], r["state"], r["note"]) for r in rows] == [(second, "-1", "rejected by the chain"),
                                                                 (first, "-2", "")]
    assert [w["status"] for w in ex.fetch_withdrawals()] == ["failed", "canceled"]
    assert ex.privateGetAssetWithdrawalHistory({"state": "-2"})["data"][0]["wdId"] == first

    # nothing is due any more; moving on changes nothing
    advance(stack, 86_400)
    assert books(stack, c.uid) == {**start, ("6", "USDT:locked"): D(0)}
    assert stack.admin.post(f"/admin/withdrawals/{second}/fail", json={"reason": "again"}).status_code == 400
    assert stack.admin.post("/admin/withdrawals/123456789/fail", json={"reason": "x"}).status_code == 404
    assert [w["wdId"] for w in stack.call("GET", "/admin/withdrawals", params={"uid": c.uid, "state": "-1"})] == [
        second]
    audit_ok(stack)


# -- internal withdrawals -------------------------------------------------------------------


def test_internal_withdrawals_to_a_user_and_to_our_own_deposit_address(stack: Stack) -> None:
    sender = stack.new_user(funds={"USDT": "100"})
    receiver = stack.new_user()
    broker, sub, name = broker_with_sub(stack)
    ex = ccxt_okx(stack, sender)

    # dest 3 to a uid: instant, no fee, the receiver's funding account, a type-3 deposit
    made = ex.privatePostAssetWithdrawal({"ccy": "USDT", "amt": "30", "dest": "3", "toAddr": receiver.uid,
                                          "chain": "USDT-TRC20", "fee": "1"})["data"][0]
    wd = state_of(stack, made["wdId"])
    assert (wd["state"], wd["fee"], wd["txId"], wd["toUid"]) == ("2", "0", "", receiver.uid)
    assert books(stack, sender.uid)[("6", "USDT")] == D("70")
    assert books(stack, receiver.uid)[("6", "USDT")] == D("30")
    [dep] = ccxt_okx(stack, receiver).privateGetAssetDepositHistory({"type": "3"})["data"]
    assert (dep["amt"], dep["state"], dep["fromWdId"], dep["from"], dep["txId"]) == (
        "30", "2", made["wdId"], sender.uid, "")
    [row] = ex.privateGetAssetWithdrawalHistory({"type": "3"})["data"]
    assert (row["to"], row["toAddrType"], row["fee"], row["txId"]) == (receiver.uid, "2", "0", "")

    # dest 3 to an ND sub-account by name
    ex.privatePostAssetWithdrawal({"ccy": "USDT", "amt": "5", "dest": "3", "toAddr": name})
    assert books(stack, sub.uid)[("6", "USDT")] == D("5")

    # on chain to one of our deposit addresses (beneficiary: trading): settled inside, fee 0
    address = stack.services.chain.create_address(broker.uid, name, "USDT", chain="USDT-TRC20", to=18)
    inside = ex.withdraw("USDT", 15, address.addr, {"network": "TRC20"})
    wd = state_of(stack, inside["id"])
    assert (wd["state"], wd["fee"], wd["txId"], wd["dest"], wd["toUid"]) == ("2", "0", "", "4", sub.uid)
    assert books(stack, sender.uid)[("6", "USDT")] == D("50")
    assert books(stack, sub.uid)[("18", "USDT")] == D("15")
    deps = ccxt_okx(stack, sub).privateGetAssetDepositHistory({"type": "3"})["data"]
    assert [(d["amt"], d["fromWdId"], d["to"]) for d in deps] == [("15", inside["id"], address.addr),
                                                                  ("5", deps[1]["fromWdId"], name)]

    # an XRP deposit address is the platform's address and a tag
    stack.call("POST", f"/admin/users/{sender.uid}/deposits", json={"ccy": "XRP", "amt": "100"})
    xrp = stack.services.chain.create_address(broker.uid, name, "XRP")
    assert xrp.addr == platform_address("xrp")
    ex.withdraw("XRP", 25, xrp.addr, {"tag": xrp.tag})
    assert books(stack, sub.uid)[("18", "XRP")] == D("25") and books(stack, sender.uid)[("6", "XRP")] == D("75")

    # refused: oneself, unknown users, a tag that is none of ours; nothing changes
    before = snapshot(stack, sender.uid, receiver.uid, sub.uid)
    for to in (sender.uid, "1234567890123456", "noSuchSubAcct", "not-an-account"):
        assert refused(ex.privatePostAssetWithdrawal, {"ccy": "USDT", "amt": "1", "dest": "3", "toAddr": to}) == \
            "58213", to
    assert refused(ex.withdraw, "XRP", 25, xrp.addr, {"tag": "1"}) == "51000"
    assert snapshot(stack, sender.uid, receiver.uid, sub.uid) == before
    audit_ok(stack)


# -- an ND broker's sub-account ---------------------------------------------------------------


def test_nd_sub_account_withdraws_with_its_own_key_and_the_broker_sees_it(stack: Stack) -> None:
    broker, sub, name = broker_with_sub(stack, funds={"BTC": "1"})
    no_withdraw = stack.add_key(sub.uid, env="live", perms=("read_only", "trade"))
    before = snapshot(stack, sub.uid)
    assert refused(ccxt_okx(stack, no_withdraw).withdraw, "BTC", 0.01, new_address("btc")) == "50120"
    assert snapshot(stack, sub.uid) == before

    to = new_address("btc", 2)
    made = ccxt_okx(stack, sub).withdraw("BTC", 0.01, to)
    b = books(stack, sub.uid)
    fee = chain_of(stack, "BTC-Bitcoin").fee
    assert b[("6", "BTC")] == D("0.99") - fee and b[("6", "BTC:locked")] == D("0.01") + fee

    bx = ccxt_okx(stack, broker)
    rows = bx.privateGetAssetBrokerNdSubaccountWithdrawalHistory({"subAcct": name})["data"]
    assert [(r["subAcct"], r["wdId"], r["amt"], r["to"], r["state"]) for r in rows] == [
        (name, made["id"], "0.01", to, "0")]
    assert set(rows[0]) == EXPECTED_FIELDS | {"subAcct"}
    every = bx.privateGetAssetBrokerNdSubaccountWithdrawalHistory()["data"]
    assert [r["wdId"] for r in every] == [made["id"]]
    assert bx.privateGetAssetBrokerNdSubaccountWithdrawalHistory({"ccy": "ETH"})["data"] == []
    assert bx.privateGetAssetBrokerNdSubaccountWithdrawalHistory({"wdId": made["id"], "state": "0", "type": "4"})[
        "data"][0]["wdId"] == made["id"]

    # refused callers and names
    other_broker, _, other_name = broker_with_sub(stack)
    assert refused(ccxt_okx(stack, other_broker).privateGetAssetBrokerNdSubaccountWithdrawalHistory,
                   {"subAcct": name}) == "59510"
    assert refused(bx.privateGetAssetBrokerNdSubaccountWithdrawalHistory, {"subAcct": other_name}) == "59510"
    assert refused(ccxt_okx(stack, sub).privateGetAssetBrokerNdSubaccountWithdrawalHistory) == "59604"
    assert refused(ccxt_okx(stack, stack.new_user()).privateGetAssetBrokerNdSubaccountWithdrawalHistory) == "59608"
    assert refused(bx.privateGetAssetBrokerNdSubaccountWithdrawalHistory, {"limit": "101"}) == "51000"

    # a sub-account of a master that is not a broker may not withdraw
    plain = stack.new_user()
    other = stack.call("POST", f"/admin/users/{plain.uid}/sub-accounts", json={"subAcct": new_name()})
    non_nd = stack.add_key(other["uid"], env="live", funds={"BTC": "1"})
    before = snapshot(stack, non_nd.uid)
    assert refused(ccxt_okx(stack, non_nd).withdraw, "BTC", 0.01, to) == "58209"
    assert snapshot(stack, non_nd.uid) == before
    audit_ok(stack)


# -- bad input: each refused, nothing changed ---------------------------------------------


def _flip_case(addr: str) -> str:
    """An EIP-55 address with one letter's case flipped, still of mixed case: a bad checksum."""
    for i in (i for i, ch in enumerate(addr[2:], 2) if ch.isalpha()):
        flipped = addr[:i] + addr[i].swapcase() + addr[i + 1:]
        if flipped[2:] not in (flipped[2:].lower(), flipped[2:].upper()):
            return flipped
    raise AssertionError(f"{addr} has no letter whose flip keeps mixed case")


def test_bad_withdrawal_requests_change_nothing(stack: Stack) -> None:
    c = stack.new_user(funds={"ETH": "1", "BTC": "1000", "XRP": "100", "USDT": "100"})
    ex = ccxt_okx(stack, c)
    eth = new_address("evm")
    tron = new_address("tron")
    xrp = new_address("xrp")

    def body(**fields: str) -> dict[str, str]:
        return {"ccy": "ETH", "amt": "0.1", "dest": "4", "toAddr": eth, **fields}

    cases: list[tuple[str, dict[str, str]]] = [
        ("58350", body(amt="0.999")),  # amt + fee beyond the balance
        ("58206", body(amt="0.001")),  # below minWd
        ("58205", {"ccy": "BTC", "amt": "501", "dest": "4", "toAddr": new_address("btc")}),  # above maxWd
        ("51000", body(amt="0.123456789")),  # more decimals than wdTickSz
        ("51000", body(amt="-1")),
        ("51000", body(amt="1e-1")),
        ("51000", body(toAddr="0x1234")),  # malformed
        ("51000", body(toAddr=_flip_case(eth))),  # bad EIP-55 checksum
        ("51000", body(toAddr=eth + ":123")),  # a tag on a chain without tags
        ("51000", {"ccy": "USDT", "amt": "10", "dest": "4", "toAddr": tron[:-1] + ("1" if tron[-1] != "1" else "2"),
                   "chain": "USDT-TRC20"}),  # bad base58check
        ("51000", {"ccy": "XRP", "amt": "25", "dest": "4", "toAddr": xrp}),  # missing tag
        ("51000", {"ccy": "XRP", "amt": "25", "dest": "4", "toAddr": xrp + ":abc"}),  # malformed tag
        ("51000", body(chain="ETH-Foo")),  # unknown chain
        ("51000", body(chain="USDT-TRC20")),  # a chain of another currency
        ("51000", body(ccy="NOPE")),
        ("51000", body(fee="0.1")),  # not the chain's fee
        ("51000", body(dest="2")),
        ("51000", body(toAddrType="2")),  # uid addressing is internal only
        ("51000", body(clientId="bad-client-id")),
        ("50014", {"ccy": "ETH", "amt": "0.1", "toAddr": eth}),  # no dest
        ("50014", {"ccy": "ETH", "amt": "0.1", "dest": "4"}),  # no toAddr
        ("50014", {"amt": "0.1", "dest": "4", "toAddr": eth}),  # no ccy
        ("58213", body(dest="3", toAddr="someone@example.com")),
    ]
    before = snapshot(stack, c.uid)
    for code, fields in cases:
        assert refused(ex.privatePostAssetWithdrawal, fields) == code, fields
    assert snapshot(stack, c.uid) == before

    # a key without the withdraw permission; a demo key; a frozen account
    read_only = stack.add_key(c.uid, env="live", perms=("read_only", "trade"))
    assert refused(ccxt_okx(stack, read_only).privatePostAssetWithdrawal, body()) == "50120"
    demo = stack.new_user(env="demo", funds={"ETH": "1"})
    demo_before = snapshot(stack, demo.uid)
    assert refused(ccxt_okx(stack, demo).withdraw, "ETH", 0.1, eth) == "50038"
    assert snapshot(stack, demo.uid) == demo_before
    stack.call("POST", f"/admin/users/{c.uid}/freeze", json={"functions": ["withdrawal"]})
    assert refused(ex.privatePostAssetWithdrawal, body()) == "58004"
    stack.call("POST", f"/admin/users/{c.uid}/unfreeze", json={"functions": ["withdrawal"]})
    assert snapshot(stack, c.uid) == before

    # history filters out of range
    for params in ({"limit": "0"}, {"limit": "101"}, {"state": "3"}, {"type": "2"}, {"after": "abc"}):
        assert refused(ex.privateGetAssetWithdrawalHistory, params) == "51000", params
    audit_ok(stack)


def test_history_paging_after_before_limit(stack: Stack) -> None:
    c = stack.new_user(funds={"USDT": "100"})
    receiver = stack.new_user()
    ex = ccxt_okx(stack, c)
    made = []
    for i in range(3):
        made.append(ex.privatePostAssetWithdrawal({"ccy": "USDT", "amt": str(i + 1), "dest": "3",
                                                   "toAddr": receiver.uid, "clientId": f"page{i}"})["data"][0])
        stack.call("POST", "/admin/clock/advance", json={"seconds": 1})
    rows = ex.privateGetAssetWithdrawalHistory()["data"]
    assert [r["clientId"] for r in rows] == ["page2", "page1", "page0"]
    ts = [r["ts"] for r in rows]
    assert [r["clientId"] for r in ex.privateGetAssetWithdrawalHistory({"after": ts[0]})["data"]] == ["page1", "page0"]
    assert [r["clientId"] for r in ex.privateGetAssetWithdrawalHistory({"before": ts[2]})["data"]] == [
        "page2", "page1"]
    assert [r["clientId"] for r in ex.privateGetAssetWithdrawalHistory({"before": ts[2], "limit": "1"})["data"]] == [
        "page2"]
    assert [r["clientId"] for r in ex.privateGetAssetWithdrawalHistory({"limit": "1"})["data"]] == ["page2"]
    assert ex.privateGetAssetWithdrawalHistory({"clientId": "page1"})["data"][0]["wdId"] == made[1]["wdId"]
    assert ex.privateGetAssetWithdrawalHistory({"wdId": made[0]["wdId"]})["data"][0]["clientId"] == "page0"
    assert ex.privateGetAssetWithdrawalHistory({"ccy": "BTC"})["data"] == []
