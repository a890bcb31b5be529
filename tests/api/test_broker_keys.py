"""ND broker sub-account API keys through ccxt.okx, on SQLite and PostgreSQL: create, query, reset
and delete; the sub-account's own requests honour the key's permissions and bound IPs and work
on every user endpoint; keys (OKX and Gemini) die with their sub-account; bad input refused with
nothing changed; idle trade keys without a bound IP expire after 14 days on the sandbox clock."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from decimal import Decimal

import ccxt
import pytest

from tests.api.test_broker_api import code, make_broker, name, ok, okx, reply, state, sub_key
from tests.api.test_gemini_api import ccxt_gemini, gemini_key
from tests.stack import Stack

PHRASE = "Qwr4321!x"


def test_key_create_query_reset_delete_and_use(stack: Stack) -> None:
    broker = make_broker(stack, funds={"USDT": "500", "ETH": "3"})
    ex = okx(stack, broker)
    sub, lower = name("k"), name("k")
    sub_uid = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})[0]["uid"]
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": lower, "mainAcct": sub})

    made = ok(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": sub, "label": "broker3", "passphrase": PHRASE,
                                                       "perm": "trade", "ip": "127.0.0.1,10.0.108.9"})[0]
    assert made["subAcct"] == sub and made["label"] == "broker3" and made["passphrase"] == PHRASE
    assert made["perm"] == "read_only,trade" and made["ip"] == "127.0.0.1,10.0.108.9"
    assert made["secretKey"] and made["ts"].isdigit()
    listed = ok(ex.privateGetBrokerNdSubaccountApikey, {"subAcct": sub})
    assert listed == [{"label": "broker3", "apiKey": made["apiKey"], "perm": "read_only,trade",
                       "ip": "127.0.0.1,10.0.108.9", "ts": made["ts"]}]
    assert ok(ex.privateGetBrokerNdSubaccountApikey, {"subAcct": sub, "apiKey": made["apiKey"]}) == listed

    trader = sub_key(stack, broker, sub, perm="read_only,trade", ip="127.0.0.1")
    reader = sub_key(stack, broker, sub, perm="read_only")
    fenced = sub_key(stack, broker, sub, perm="read_only,trade", ip="10.9.8.7")
    deep = sub_key(stack, broker, lower, perm="trade")

    # funded by the master (type 1); the sub-account's own key works on user endpoints
    ok(ex.privatePostAssetTransfer, {"ccy": "USDT", "amt": "100", "from": "6", "to": "6", "type": "1",
                                     "subAcct": sub})
    ok(ex.privatePostAssetTransfer, {"ccy": "ETH", "amt": "2", "from": "6", "to": "6", "type": "1",
                                     "subAcct": sub})
    tx = okx(stack, trader)
    assert {r["ccy"]: r["availBal"] for r in ok(tx.privateGetAssetBalances)} == {"USDT": "100", "ETH": "2"}
    ok(tx.privatePostAssetTransfer, {"ccy": "USDT", "amt": "40", "from": "6", "to": "18"})
    assert okx(stack, trader).fetch_balance()["USDT"]["free"] == 40.0  # trading account, unified ccxt
    ok(tx.privatePostFinanceStakingDefiEthPurchase, {"amt": "1"})  # staking with the master's terms
    assert ok(tx.privateGetFinanceStakingDefiEthBalance)[0]["amt"] == "1"
    ok(tx.privatePostAssetTransfer, {"ccy": "USDT", "amt": "10", "from": "6", "to": "6", "type": "4",
                                     "subAcct": lower})  # to a sibling: ND sub-accounts may transfer out
    assert ok(okx(stack, deep).privateGetAssetBalances, {"ccy": "USDT"})[0]["availBal"] == "10"

    # permissions and IP binding of the sub-account's keys
    before = state(stack, broker)
    assert ok(okx(stack, reader).privateGetAssetBalances, {"ccy": "USDT"})[0]["availBal"] == "50"
    assert code(okx(stack, reader).privatePostAssetTransfer, {"ccy": "USDT", "amt": "1", "from": "6",
                                                              "to": "18"}) == "50120"
    assert code(okx(stack, fenced).privateGetAssetBalances) == "50110"
    assert code(okx(stack, fenced).privatePostAssetTransfer, {"ccy": "USDT", "amt": "1", "from": "6",
                                                              "to": "18"}) == "50110"
    assert code(okx(stack, trader).privateGetBrokerNdInfo) == "59604"
    assert state(stack, broker) == before
    stack.audit_ok()

    # reset: bind the fenced key to our IP and give it read only, then rename it
    reset = ok(ex.privatePostBrokerNdSubaccountModifyApikey, {"subAcct": sub, "apiKey": fenced.api_key,
                                                               "ip": "127.0.0.1", "perm": "read_only"})[0]
    assert (reset["apiKey"], reset["perm"], reset["ip"], reset["subAcct"]) == (
        fenced.api_key, "read_only", "127.0.0.1", sub)
    assert ok(okx(stack, fenced).privateGetAssetBalances, {"ccy": "USDT"})[0]["availBal"] == "50"
    assert code(okx(stack, fenced).privatePostAssetTransfer, {"ccy": "USDT", "amt": "1", "from": "6",
                                                              "to": "18"}) == "50120"
    renamed = ok(ex.privatePostBrokerNdSubaccountModifyApikey, {"subAcct": sub, "apiKey": fenced.api_key,
                                                                 "label": "renamed1", "perm": "trade,withdraw"})[0]
    assert (renamed["label"], renamed["perm"], renamed["ip"]) == ("renamed1", "read_only,trade,withdraw", "127.0.0.1")
    ok(okx(stack, fenced).privatePostAssetTransfer, {"ccy": "USDT", "amt": "1", "from": "18", "to": "6"})

    # delete one key: it stops at once; the others go on
    assert ok(ex.privatePostBrokerNdSubaccountDeleteApikey, {"subAcct": sub, "apiKey": reader.api_key}) == [
        {"subAcct": sub}]
    assert code(okx(stack, reader).privateGetAssetBalances) == "50111"
    assert reader.api_key not in [k["apiKey"] for k in ok(ex.privateGetBrokerNdSubaccountApikey, {"subAcct": sub})]
    assert code(ex.privatePostBrokerNdSubaccountDeleteApikey, {"subAcct": sub, "apiKey": reader.api_key}) == "59506"

    # delete the sub-accounts: every key (OKX and Gemini) stops working
    gem = gemini_key(stack, sub_uid)
    ok(okx(stack, deep).privatePostAssetTransfer, {"ccy": "USDT", "amt": "10", "from": "6", "to": "6",
                                                   "type": "3"})
    ok(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": lower})
    assert code(okx(stack, deep).privateGetAssetBalances) == "50111"
    ok(tx.privatePostFinanceStakingDefiEthRedeem, {"amt": "1"})
    for ccy, amt, acct in (("USDT", "51", "6"), ("USDT", "39", "18"), ("ETH", "2", "6")):
        ok(ex.privatePostAssetTransfer, {"ccy": ccy, "amt": amt, "from": acct, "to": "6", "type": "2",
                                         "subAcct": sub})
    gem_ex = ccxt_gemini(stack, gem)
    gem_ex.privatePostV1BalancesStaking()  # works while the sub-account lives
    ok(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": sub})
    for c in (trader, fenced):
        assert code(okx(stack, c).privateGetAssetBalances) == "50111"
    with pytest.raises(ccxt.AuthenticationError):
        gem_ex.privatePostV1BalancesStaking()
    revoked = stack.call("GET", f"/admin/users/{sub_uid}/api-keys", params={"includeRevoked": True})
    assert {k["revokeReason"] for k in revoked} == {"sub_account_deleted", "deleted_by_broker"}
    assert all(k["revokedAt"] for k in stack.call("GET", f"/admin/users/{sub_uid}/gemini-keys",
                                                  params={"includeRevoked": True}))
    assert stack.balances(broker.uid)[("6", "USDT")] == Decimal("500")
    stack.audit_ok()


@pytest.mark.parametrize(("params", "expected", "field"), [
    ({"label": "x" * 51}, "51000", "label"),
    ({"label": "bad label"}, "51000", "label"),
    ({"label": ""}, "50014", "label"),
    ({"passphrase": "qwr4321!x"}, "59505", ""),  # no upper case
    ({"passphrase": "QWR4321!X"}, "59505", ""),  # no lower case
    ({"passphrase": "Qwrabcd!x"}, "59505", ""),  # no digit
    ({"passphrase": "Qwr4321xx"}, "59505", ""),  # no special character
    ({"passphrase": "Qw4!"}, "59505", ""),  # too short
    ({"passphrase": "Qw4!" * 8 + "a"}, "59505", ""),  # 33 characters
    ({"passphrase": "Qwr4321! x"}, "59505", ""),  # a space
    ({"passphrase": "Qwr4321!é"}, "59505", ""),  # not ASCII
    ({"passphrase": ""}, "50014", "passphrase"),
    ({"ip": ",".join(f"10.0.0.{i}" for i in range(1, 22))}, "59503", ""),  # a 21st IP
    ({"ip": "10.0.0.1,10.0.0.300"}, "51000", "ip"),
    ({"ip": "10.0.0.0/8"}, "51000", "ip"),
    ({"ip": "localhost"}, "51000", "ip"),
    ({"perm": "read_only,admin"}, "51000", "perm"),
    ({"subAcct": "nobody12345"}, "59510", ""),
])
def test_create_key_bad_input(stack: Stack, params: dict[str, str], expected: str, field: str) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub = name("b")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    before = state(stack, broker)
    got = reply(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": sub, "label": "good1", "passphrase": PHRASE,
                                                          "perm": "trade", **params})
    assert got["code"] == expected and field in got["msg"], got
    assert state(stack, broker) == before
    stack.audit_ok()


def test_key_limits_labels_and_reset_bad_input(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub, other_sub = name("c"), name("c")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": other_sub})
    twenty = ",".join(f"2001:db8::{i:x}" for i in range(1, 21))
    first = ok(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": sub, "label": "one", "passphrase": PHRASE,
                                                        "ip": twenty})[0]  # 20 IPs (IPv6): accepted
    assert first["perm"] == "read_only" and len(first["ip"].split(",")) == 20
    ok(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": sub, "label": "two", "passphrase": PHRASE})
    ok(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": other_sub, "label": "one", "passphrase": PHRASE})
    foreign = ok(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": other_sub, "label": "x9", "passphrase": PHRASE})
    before = state(stack, broker)
    create = ex.privatePostBrokerNdSubaccountApikey
    modify = ex.privatePostBrokerNdSubaccountModifyApikey
    assert code(create, {"subAcct": sub, "label": "one", "passphrase": PHRASE}) == "59502"
    key = first["apiKey"]
    assert code(modify, {"subAcct": sub, "apiKey": key, "label": "two"}) == "59502"
    assert code(modify, {"subAcct": sub, "apiKey": key, "ip": twenty + ",10.0.0.1"}) == "59503"
    assert code(modify, {"subAcct": sub, "apiKey": key, "ip": "1.2.3.4.5"}) == "51000"
    assert code(modify, {"subAcct": sub, "apiKey": key, "perm": "root"}) == "51000"
    assert code(modify, {"subAcct": sub, "apiKey": key, "label": "l" * 51}) == "51000"
    assert code(modify, {"subAcct": sub, "apiKey": "no-such-key"}) == "59506"
    assert code(modify, {"subAcct": sub, "apiKey": foreign[0]["apiKey"], "label": "z1"}) == "59506"  # other sub's
    assert code(modify, {"subAcct": sub}) == "50014"
    assert code(ex.privateGetBrokerNdSubaccountApikey, {"subAcct": sub, "apiKey": "no-such-key"}) == "59506"
    assert code(ex.privateGetBrokerNdSubaccountApikey, {}) == "50014"
    assert code(ex.privatePostBrokerNdSubaccountDeleteApikey, {"subAcct": sub}) == "50014"
    assert code(ex.privatePostBrokerNdSubaccountDeleteApikey, {"subAcct": other_sub, "apiKey": key}) == "59506"
    assert state(stack, broker) == before
    stack.audit_ok()
    ok(modify, {"subAcct": sub, "apiKey": key, "label": "one"})  # its own label again: fine
    for i in range(48):  # up to 50 live keys per sub-account
        ok(create, {"subAcct": sub, "label": f"n{i}", "passphrase": PHRASE})
    before = state(stack, broker)
    assert code(create, {"subAcct": sub, "label": "last", "passphrase": PHRASE}) == "59501"
    assert state(stack, broker) == before
    stack.audit_ok()


def test_idle_trade_keys_without_ip_expire_after_14_days(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(key_expiry_enabled=True)
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub = name("e")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    idle = sub_key(stack, broker, sub, perm="trade")
    withdraw = sub_key(stack, broker, sub, perm="withdraw")
    used = sub_key(stack, broker, sub, perm="trade")
    bound = sub_key(stack, broker, sub, perm="trade", ip="127.0.0.1")
    reader = sub_key(stack, broker, sub, perm="read_only")
    demo = make_broker(stack, env="demo")
    demo_sub = name("e")
    ok(okx(stack, demo).privatePostBrokerNdCreateSubaccount, {"subAcct": demo_sub})
    demo_key = sub_key(stack, demo, demo_sub, perm="trade")

    stack.call("POST", "/admin/clock/advance", json={"days": 13})
    for c in (used, broker, demo):
        ok(okx(stack, c).privateGetAssetBalances)  # a call restarts the idle time
    stack.call("POST", "/admin/clock/advance", json={"days": 1, "seconds": 3600})
    for c in (idle, withdraw):
        assert code(okx(stack, c).privateGetAssetBalances) == "50111"
    for c in (used, bound, reader, demo_key):
        ok(okx(stack, c).privateGetAssetBalances)
    keys = {k["apiKey"]: k for k in stack.call("GET", f"/admin/users/{idle.uid}/api-keys",
                                               params={"includeRevoked": True})}
    assert keys[idle.api_key]["revokeReason"] == "expired" and keys[used.api_key]["revokedAt"] is None
    assert [k["apiKey"] for k in ok(ex.privateGetBrokerNdSubaccountApikey, {"subAcct": sub})] == [
        used.api_key, bound.api_key, reader.api_key]
    stack.call("POST", "/admin/clock/advance", json={"days": 15})
    assert code(okx(stack, used).privateGetAssetBalances) == "50111"
    ok(okx(stack, bound).privateGetAssetBalances)
    stack.audit_ok()


def test_passphrase_with_every_special_class_is_usable(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub = name("s")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    for special in "!#$%&*+-./:;<=>?@^_~":
        phrase = f"Ab1{special}" + secrets.token_hex(2)
        made = ok(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": sub, "label": f"s{ord(special)}",
                                                           "passphrase": phrase})[0]
        assert made["passphrase"] == phrase


def test_no_keys_for_frozen_or_deleted_sub_accounts(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    frozen, gone = name("f"), name("g")
    frozen_uid = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": frozen})[0]["uid"]
    gone_uid = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": gone})[0]["uid"]
    stack.call("POST", f"/admin/users/{frozen_uid}/freeze", json={})
    ok(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": gone})
    before = state(stack, broker)
    refused = reply(ex.privatePostBrokerNdSubaccountApikey, {"subAcct": frozen, "label": "fz", "passphrase": PHRASE})
    assert refused["code"] == "59508" and frozen in refused["msg"]
    # the operator cannot give a deleted sub-account a key either
    r = stack.admin.post(f"/admin/users/{gone_uid}/api-keys", json={"perms": ["read_only"]})
    assert r.status_code == 404, r.text
    assert state(stack, broker) == before
    stack.audit_ok()
