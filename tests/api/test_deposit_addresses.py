"""ND broker deposit addresses through ccxt.okx implicit methods, on SQLite and PostgreSQL:
create (formats per chain, tags, SegWit), list (``selected``, ``to``), modify the beneficiary, and
every refusal with nothing changed."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ccxt
import pytest

from stakehouse.funding.addresses import is_valid_address, platform_address
from tests.api.test_clients import ccxt_okx
from tests.stack import Creds, Stack


@dataclass
class Broker:
    creds: Creds
    ex: ccxt.okx
    subs: list[str]
    sub_uids: list[str]


def sub_name() -> str:
    return "sub" + secrets.token_hex(5)


def make_broker(stack: Stack, *, subs: int = 1) -> Broker:
    """A master marked as ND broker by the operator (``PUT /admin/brokers/{uid}``), with sub-accounts."""
    c = stack.new_user()
    stack.call("PUT", f"/admin/brokers/{c.uid}", json={"level": 1})
    names, uids = [], []
    for _ in range(subs):
        name = sub_name()
        names.append(name)
        uids.append(stack.call("POST", f"/admin/users/{c.uid}/sub-accounts", json={"subAcct": name})["uid"])
    return Broker(c, ccxt_okx(stack, c), names, uids)


def code_of(fn: Callable[..., Any], params: dict[str, Any]) -> str:
    """The OKX code of a call: "0", or the code of the error ccxt raised."""
    try:
        reply = fn(params)
    except ccxt.BaseError as exc:
        found = re.search(r'"code":\s*"(\d+)"', str(exc))
        assert found, str(exc)
        return found.group(1)
    return str(reply["code"])


def addresses(b: Broker, sub: str, ccy: str) -> list[dict[str, Any]]:
    reply = b.ex.privateGetAssetBrokerNdSubaccountDepositAddress({"subAcct": sub, "ccy": ccy})
    assert reply["code"] == "0", reply
    rows: list[dict[str, Any]] = reply["data"]
    return rows


def create(b: Broker, **params: str) -> dict[str, Any]:
    reply = b.ex.privatePostAssetBrokerNdSubaccountDepositAddress(params)
    assert reply["code"] == "0", reply
    row: dict[str, Any] = reply["data"][0]
    return row


def test_addresses_have_their_chains_formats_and_tags(stack: Stack) -> None:
    b = make_broker(stack)
    sub = b.subs[0]
    eth = create(b, subAcct=sub, ccy="ETH")
    assert eth["chain"] == "ETH-ERC20" and eth["ccy"] == "ETH" and eth["ts"].isdigit() and "tag" not in eth
    assert is_valid_address("evm", eth["addr"]) and eth["addr"] != eth["addr"].lower()  # EIP-55 mixed case
    btc = create(b, subAcct=sub, ccy="BTC")
    assert btc["addr"].startswith("1") and is_valid_address("btc", btc["addr"])
    segwit = create(b, subAcct=sub, ccy="BTC", addrType="2")
    assert segwit["addr"].startswith("bc1q") and is_valid_address("btc", segwit["addr"])
    trc = create(b, subAcct=sub, ccy="USDT")  # the main chain
    assert trc["chain"] == "USDT-TRC20" and trc["addr"].startswith("T") and is_valid_address("tron", trc["addr"])
    erc = create(b, subAcct=sub, ccy="usdt", chain="USDT-ERC20")
    assert erc["chain"] == "USDT-ERC20" and is_valid_address("evm", erc["addr"])
    sol = create(b, subAcct=sub, ccy="SOL")
    assert is_valid_address("sol", sol["addr"])
    xrp1, xrp2 = create(b, subAcct=sub, ccy="XRP"), create(b, subAcct=sub, ccy="XRP")
    assert xrp1["addr"] == xrp2["addr"] == platform_address("xrp")  # one shared address, a tag each
    assert xrp1["tag"].isdigit() and xrp1["tag"] != xrp2["tag"]

    rows = addresses(b, sub, "BTC")
    assert [r["addr"] for r in rows] == [segwit["addr"], btc["addr"]]  # newest first
    assert [r["selected"] for r in rows] == [True, False]
    assert all(r["to"] == "6" and r["ctAddr"] == "" and r["chain"] == "BTC-Bitcoin" for r in rows)
    usdt = addresses(b, sub, "USDT")
    assert {r["chain"]: r["selected"] for r in usdt} == {"USDT-ERC20": True, "USDT-TRC20": True}
    assert [r["tag"] for r in addresses(b, sub, "XRP")] == [xrp2["tag"], xrp1["tag"]]
    assert addresses(b, sub, "USDC") == []
    # the operator finds the owner of an address
    found = stack.call("GET", f"/admin/chain/addresses/{eth['addr']}")
    assert [(a["uid"], a["ccy"], a["chain"]) for a in found] == [(b.sub_uids[0], "ETH", "ETH-ERC20")]
    stack.audit_ok()


def test_modify_sets_the_beneficiary_of_all_addresses(stack: Stack) -> None:
    b = make_broker(stack)
    sub = b.subs[0]
    eth = create(b, subAcct=sub, ccy="ETH")
    create(b, subAcct=sub, ccy="USDT")
    xrp = create(b, subAcct=sub, ccy="XRP")
    reply = b.ex.privatePostAssetBrokerNdModifySubaccountDepositAddress(
        {"subAcct": sub, "ccy": "ETH", "addr": eth["addr"], "to": "18"})
    assert reply["code"] == "0", reply
    row = reply["data"][0]
    assert (row["ccy"], row["chain"], row["addr"], row["to"]) == ("ETH", "ETH-ERC20", eth["addr"], "18")
    assert row["ts"].isdigit()
    assert {r["to"] for ccy in ("ETH", "USDT", "XRP") for r in addresses(b, sub, ccy)} == {"18"}
    # a tag chain's address is named as addr:tag
    reply = b.ex.privatePostAssetBrokerNdModifySubaccountDepositAddress(
        {"subAcct": sub, "ccy": "XRP", "addr": f"{xrp['addr']}:{xrp['tag']}", "to": "6"})
    assert reply["code"] == "0" and reply["data"][0]["tag"] == xrp["tag"]
    assert {r["to"] for r in addresses(b, sub, "ETH")} == {"6"}
    # creating with `to` sets it too
    create(b, subAcct=sub, ccy="ETH", to="18")
    assert {r["to"] for r in addresses(b, sub, "ETH")} == {"18"}


def test_the_21st_address_of_a_currency_and_chain_is_refused(stack: Stack) -> None:
    b = make_broker(stack)
    sub = b.subs[0]
    for _ in range(20):
        create(b, subAcct=sub, ccy="SOL")
    before = addresses(b, sub, "SOL")
    assert len(before) == 20
    assert code_of(b.ex.privatePostAssetBrokerNdSubaccountDepositAddress, {"subAcct": sub, "ccy": "SOL"}) == "58300"
    assert addresses(b, sub, "SOL") == before
    # the limit is per (currency, chain): another chain of USDT has its own 20
    create(b, subAcct=sub, ccy="USDT")
    stack.audit_ok()


BAD_CREATE = [
    ({"ccy": "ETH", "chain": "ETH-Nowhere"}, "51000"),  # unknown chain
    ({"ccy": "ETH", "chain": "USDT-TRC20"}, "51000"),  # a chain of another currency
    ({"ccy": "NOPE"}, "51000"),  # unknown currency
    ({"ccy": "BETH"}, "51000"),  # a currency without chains
    ({"ccy": "ETH", "addrType": "2"}, "51000"),  # SegWit only on BTC
    ({"ccy": "BTC", "addrType": "3"}, "51000"),
    ({"ccy": "ETH", "to": "7"}, "51000"),  # beneficiary 6 or 18 only
    ({"ccy": "ETH", "to": "1"}, "51000"),
    ({}, "50014"),  # ccy missing
]


@pytest.mark.parametrize(("params", "code"), BAD_CREATE)
def test_bad_create_parameters_change_nothing(stack: Stack, params: dict[str, str], code: str) -> None:
    b = make_broker(stack)
    sub = b.subs[0]
    assert code_of(b.ex.privatePostAssetBrokerNdSubaccountDepositAddress, {"subAcct": sub, **params}) == code
    for ccy in ("ETH", "BTC"):
        assert addresses(b, sub, ccy) == []
    assert stack.call("GET", f"/admin/users/{b.sub_uids[0]}")["uid"] == b.sub_uids[0]


def test_only_the_brokers_master_key_may_act_on_its_own_sub_accounts(stack: Stack) -> None:
    b = make_broker(stack)
    other = make_broker(stack)
    plain = stack.new_user()  # a master that is not a broker
    sub_key = stack.add_key(b.sub_uids[0], env="live")
    theirs = other.subs[0]
    mine = b.subs[0]
    create(b, subAcct=mine, ccy="ETH")
    before = addresses(b, mine, "ETH")
    other_before = addresses(other, theirs, "ETH")
    calls = {
        "create": lambda ex, sub: (ex.privatePostAssetBrokerNdSubaccountDepositAddress, {"subAcct": sub, "ccy": "ETH"}),
        "modify": lambda ex, sub: (ex.privatePostAssetBrokerNdModifySubaccountDepositAddress,
                                   {"subAcct": sub, "ccy": "ETH", "addr": before[0]["addr"], "to": "18"}),
        "list": lambda ex, sub: (ex.privateGetAssetBrokerNdSubaccountDepositAddress, {"subAcct": sub, "ccy": "ETH"}),
        "history": lambda ex, sub: (ex.privateGetAssetBrokerNdSubaccountDepositHistory, {"subAcct": sub}),
    }
    for name, call in calls.items():
        assert code_of(*call(b.ex, theirs)) == "59510", name  # another broker's sub-account
        assert code_of(*call(b.ex, "noSuchSub1")) == "59510", name
        assert code_of(*call(ccxt_okx(stack, sub_key), mine)) == "59604", name  # a sub-account's key
        assert code_of(*call(ccxt_okx(stack, plain), mine)) == "59608", name  # not a broker
    assert addresses(b, mine, "ETH") == before
    assert addresses(other, theirs, "ETH") == other_before
    # modify naming an address that is not this sub-account's (another sub's, or made up)
    second = make_broker(stack, subs=2)
    addr = create(second, subAcct=second.subs[0], ccy="ETH")["addr"]
    for params in ({"subAcct": second.subs[1], "ccy": "ETH", "addr": addr, "to": "18"},
                   {"subAcct": second.subs[0], "ccy": "ETH", "addr": addr.lower(), "to": "18"},
                   {"subAcct": second.subs[0], "ccy": "USDT", "chain": "USDT-ERC20", "addr": addr, "to": "18"}):
        assert code_of(second.ex.privatePostAssetBrokerNdModifySubaccountDepositAddress, params) == "58301"
    for params, code in (({"subAcct": second.subs[0], "ccy": "ETH", "addr": addr, "to": "7"}, "51000"),
                         ({"subAcct": second.subs[0], "ccy": "ETH", "addr": addr}, "50014"),
                         ({"subAcct": second.subs[0], "ccy": "ETH", "to": "18"}, "50014")):
        assert code_of(second.ex.privatePostAssetBrokerNdModifySubaccountDepositAddress, params) == code
    assert {r["to"] for r in addresses(second, second.subs[0], "ETH")} == {"6"}
    stack.audit_ok()


def test_read_key_cannot_create(stack: Stack) -> None:
    b = make_broker(stack)
    reader = stack.add_key(b.creds.uid, env="live", perms=("read_only",))
    ex = ccxt_okx(stack, reader)
    assert code_of(ex.privatePostAssetBrokerNdSubaccountDepositAddress, {"subAcct": b.subs[0], "ccy": "ETH"}) \
        == "50120"
    assert code_of(ex.privateGetAssetBrokerNdSubaccountDepositAddress, {"subAcct": b.subs[0], "ccy": "ETH"}) == "0"
    assert addresses(b, b.subs[0], "ETH") == []
