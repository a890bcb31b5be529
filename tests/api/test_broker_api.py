"""ND broker through ccxt.okx implicit methods, on SQLite and PostgreSQL: broker info, two levels of
sub-accounts with paging, account levels, fee-rate changes and their history, IP reports, demo
top-ups, deletion (refused while funded), and every bad input of these routes with its exact
OKX code and nothing changed."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

HKT = dt.timezone(dt.timedelta(hours=8))


def okx(stack: Stack, c: Creds) -> ccxt.okx:
    ex = ccxt.okx({"apiKey": c.api_key, "secret": c.secret, "password": c.passphrase, "enableRateLimit": False})
    if c.env == "demo":
        ex.set_sandbox_mode(True)
    ex.urls["api"]["rest"] = stack.base_url
    return ex


def reply(fn: Callable[..., Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OKX reply of an implicit ccxt call, whether ccxt raised on it or not."""
    try:
        out: dict[str, Any] = fn(params or {})
        return out
    except ccxt.BaseError as exc:
        text = str(exc)
        parsed: dict[str, Any] = json.loads(text[text.index("{"):])
        return parsed


def ok(fn: Callable[..., Any], params: dict[str, Any] | None = None) -> list[Any]:
    got = reply(fn, params)
    assert got["code"] == "0", got
    data: list[Any] = got["data"]
    return data


def code(fn: Callable[..., Any], params: dict[str, Any] | None = None) -> str:
    got = reply(fn, params)
    assert got["code"] != "0", got
    return str(got["code"])


def name(prefix: str = "nd") -> str:
    return prefix + secrets.token_hex(5)


def make_broker(stack: Stack, *, env: str = "live", funds: dict[str, str] | None = None, **fields: Any) -> Creds:
    c = stack.new_user(env=env, funds=funds if funds is not None else {"USDT": "1000"})
    stack.call("PUT", f"/admin/brokers/{c.uid}", json={"level": 1, **fields})
    return c


def sub_key(stack: Stack, broker: Creds, sub: str, *, perm: str = "read_only,trade", ip: str = "") -> Creds:
    """An API key for a sub-account, created by the broker, as client credentials."""
    phrase = "Pass" + secrets.token_hex(4) + "!1"
    params = {"subAcct": sub, "label": name("k"), "passphrase": phrase, "perm": perm}
    if ip:
        params["ip"] = ip
    made = ok(okx(stack, broker).privatePostBrokerNdSubaccountApikey, params)[0]
    assert made["passphrase"] == phrase and made["secretKey"]
    uid = next(s["uid"] for s in stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts")
               if s["subAcct"] == sub)
    return Creds(uid, broker.env, made["apiKey"], made["secretKey"], phrase)


def state(stack: Stack, broker: Creds) -> dict[str, Any]:
    """Everything a broker call may change: sub-accounts (deleted ones too), their keys and
    reported IPs, fee changes, and every balance of the broker and its sub-accounts."""
    subs = stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts", params={"includeDeleted": True})
    out: dict[str, Any] = {"broker": stack.call("GET", f"/admin/brokers/{broker.uid}"), "subs": subs,
                           "fees": stack.call("GET", f"/admin/brokers/{broker.uid}/fee-rates"),
                           "balances": {broker.uid: stack.balances(broker.uid)}}
    for s in subs:
        out["balances"][s["uid"]] = stack.balances(s["uid"])
        keys = stack.call("GET", f"/admin/users/{s['uid']}/api-keys", params={"includeRevoked": True})
        out[f"keys:{s['uid']}"] = [{k: v for k, v in key.items() if k != "lastUsedAt"} for key in keys]
        out[f"ips:{s['uid']}"] = stack.call("GET", f"/admin/users/{s['uid']}/reported-ips")
    return out


def admin_now(stack: Stack) -> dt.datetime:
    return dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"])


def fee_at(stack: Stack, uid: str, at: dt.datetime, **query: str) -> dict[str, Any]:
    rates: dict[str, Any] = stack.call("GET", f"/admin/users/{uid}/fee-rate",
                                       params={"at": at.isoformat(), **query})
    return rates


# -- lifecycle --------------------------------------------------------------------------------------


def test_broker_lifecycle_two_levels_paging_levels_fees_delete(stack: Stack) -> None:
    broker = make_broker(stack, funds={"USDT": "1000", "ETH": "2"})
    ex = okx(stack, broker)
    info = ok(ex.privateGetBrokerNdInfo)[0]
    assert (info["level"], info["maxSubAcctQty"], info["subAcctQty"]) == ("lv1", "1000", "0")
    assert info["ts"].isdigit()

    first, second, third = name("a"), name("b"), name("c")
    made = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": first, "label": "5566", "clientIP": "1.2.3.4"})[0]
    assert made["subAcct"] == first and made["label"] == "5566" and made["acctLv"] == "1" and made["uid"].isdigit()
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": second, "mainAcct": first})
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": third})
    assert ok(ex.privateGetBrokerNdInfo)[0]["subAcctQty"] == "3"

    # paging, oldest first; the second-level sub-account names its first-level one
    page1 = ok(ex.privateGetBrokerNdSubaccountInfo, {"limit": "2"})[0]
    page2 = ok(ex.privateGetBrokerNdSubaccountInfo, {"limit": "2", "page": "2"})[0]
    assert (page1["page"], page1["totalPage"], page2["page"], page2["totalPage"]) == ("1", "2", "2", "2")
    rows = page1["details"] + page2["details"]
    assert [r["subAcct"] for r in rows] == [first, second, third]
    assert rows[0] == {"acctLv": "1", "canTransOut": True, "mainAcct": "", "enable": True, "frozenFunc": [],
                       "label": "5566", "subAcct": first, "ts": made["ts"], "uid": made["uid"]}
    assert rows[1]["mainAcct"] == first and rows[2]["mainAcct"] == ""
    everything = ok(ex.privateGetBrokerNdSubaccountInfo)[0]
    assert (len(everything["details"]), everything["totalPage"]) == (3, "1")
    assert ok(ex.privateGetBrokerNdSubaccountInfo, {"subAcct": second})[0]["details"][0]["uid"] == rows[1]["uid"]
    assert ok(ex.privateGetBrokerNdSubaccountInfo, {"uid": made["uid"]})[0]["details"][0]["subAcct"] == first
    assert ok(ex.privateGetBrokerNdSubaccountInfo, {"page": "3", "limit": "2"})[0]["details"] == []

    # account level
    assert ok(ex.privatePostBrokerNdSetSubaccountLevel, {"subAcct": first, "acctLv": "3"}) == [{"acctLv": "3"}]
    assert ok(ex.privateGetBrokerNdSubaccountInfo, {"subAcct": first})[0]["details"][0]["acctLv"] == "3"

    # IP report
    reported = ok(ex.privatePostBrokerNdReportSubaccountIp, {"subAcct": first, "clientIP": "5.6.7.8"})[0]
    assert reported["subAcct"] == first and reported["ts"].isdigit()
    ips = stack.call("GET", f"/admin/users/{made['uid']}/reported-ips")
    assert [(i["ip"], i["kind"]) for i in ips] == [("1.2.3.4", "register"), ("5.6.7.8", "report")]

    # fund the first-level sub-account (type 1), refuse its deletion, empty it (type 2), delete
    ok(ex.privatePostAssetTransfer, {"ccy": "USDT", "amt": "100", "from": "6", "to": "6", "type": "1",
                                     "subAcct": first})
    ok(ex.privatePostAssetTransfer, {"ccy": "ETH", "amt": "0.5", "from": "6", "to": "18", "type": "1",
                                     "subAcct": second})
    before = state(stack, broker)
    assert code(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": first}) == "59623"  # has a sub-account
    assert code(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": second}) == "59606"  # funded (trading)
    assert state(stack, broker) == before
    stack.audit_ok()
    ok(ex.privatePostAssetTransfer, {"ccy": "ETH", "amt": "0.5", "from": "18", "to": "6", "type": "2",
                                     "subAcct": second})
    assert ok(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": second}) == [{"subAcct": second}]
    before = state(stack, broker)
    assert code(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": first}) == "59606"
    assert state(stack, broker) == before
    stack.audit_ok()
    ok(ex.privatePostAssetTransfer, {"ccy": "USDT", "amt": "100", "from": "6", "to": "6", "type": "2",
                                     "subAcct": first})
    assert ok(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": first}) == [{"subAcct": first}]
    assert stack.balances(broker.uid)[("6", "USDT")] == Decimal("1000")
    assert stack.balances(broker.uid)[("6", "ETH")] == Decimal("2")

    # gone from lists, lookups and counts; the name stays taken; a second delete finds nothing
    assert [r["subAcct"] for r in ok(ex.privateGetBrokerNdSubaccountInfo)[0]["details"]] == [third]
    assert ok(ex.privateGetBrokerNdInfo)[0]["subAcctQty"] == "1"
    assert code(ex.privatePostBrokerNdDeleteSubaccount, {"subAcct": first}) == "59510"
    assert code(ex.privatePostBrokerNdSetSubaccountLevel, {"subAcct": first, "acctLv": "2"}) == "59510"
    assert code(ex.privatePostAssetTransfer, {"ccy": "USDT", "amt": "1", "from": "6", "to": "6", "type": "1",
                                              "subAcct": first}) == "58115"
    assert code(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": first}) == "59601"
    deleted = [s for s in stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts",
                                     params={"includeDeleted": True}) if s["deletedAt"]]
    assert {s["subAcct"] for s in deleted} == {first, second}
    stack.audit_ok()


def test_fee_rate_changes_keep_their_history(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    one, two = name("f"), name("g")
    uid_one = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": one})[0]["uid"]
    uid_two = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": two})[0]["uid"]
    now = admin_now(stack)
    today = now.astimezone(HKT).date()
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), HKT)
    in_three_days = today + dt.timedelta(days=3)

    # the broker's default for every sub-account, from the next 00:00 HKT
    got = ok(ex.privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "10", "chgMaker": "5"})
    assert got == [{"subAcct": "", "effTs": tomorrow.strftime("%Y%m%d")}]
    # one sub-account's own taker markup for SPOT, from a day given
    day = in_three_days.strftime("%Y%m%d")
    got = ok(ex.privatePostBrokerNdSetSubaccountFeeRate, {"subAcct": one, "instType": "SPOT", "chgType": "percentage",
                                                          "chgTaker": "50", "effDate": day})
    assert got == [{"subAcct": one, "effTs": day}]
    # a later default replacing the first one two days on (0.1 bp precision)
    later = (today + dt.timedelta(days=2)).strftime("%Y%m%d")
    ok(ex.privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "2.5", "chgMaker": "0",
                                                    "effDate": later})

    before = fee_at(stack, uid_one, now)
    assert (before["taker"]["rate"], before["maker"]["rate"]) == ("0.001", "0.0008")
    assert before["taker"]["change"] is None
    assert fee_at(stack, uid_one, tomorrow - dt.timedelta(milliseconds=1))["taker"]["change"] is None
    first_day = fee_at(stack, uid_one, tomorrow)
    assert (first_day["taker"]["rate"], first_day["maker"]["rate"]) == ("0.002", "0.0013")
    assert first_day["taker"]["change"]["chgTaker"] == "10" and first_day["taker"]["change"]["uid"] == ""
    day_two = fee_at(stack, uid_two, tomorrow + dt.timedelta(days=1, hours=5))
    assert (day_two["taker"]["rate"], day_two["maker"]["rate"]) == ("0.00125", "0.0008")
    own = fee_at(stack, uid_one, dt.datetime.combine(in_three_days, dt.time(), HKT))
    assert (own["taker"]["rate"], own["maker"]["rate"]) == ("0.0015", "0.0008")  # own taker, default maker
    assert own["taker"]["change"]["uid"] == uid_one and own["taker"]["change"]["chgType"] == "percentage"
    other_type = fee_at(stack, uid_one, dt.datetime.combine(in_three_days, dt.time(), HKT), instType="SWAP")
    assert other_type["taker"]["rate"] == "0.00125"  # the SPOT markup does not cover SWAP
    # the same lookup by Unix milliseconds
    ms = str(int(tomorrow.timestamp() * 1000))
    assert stack.call("GET", f"/admin/users/{uid_one}/fee-rate", params={"at": ms})["taker"]["rate"] == "0.002"
    history = stack.call("GET", f"/admin/brokers/{broker.uid}/fee-rates")
    assert [(h["uid"], h["chgType"], h["chgTaker"], h["chgMaker"]) for h in history] == [
        ("", "absolute", "10", "5"), (uid_one, "percentage", "50", ""), ("", "absolute", "2.5", "0")]
    stack.audit_ok()


def test_demo_top_up_and_live_refusal(stack: Stack) -> None:
    demo = make_broker(stack, env="demo")
    ex = okx(stack, demo)
    sub = name("d")
    sub_uid = ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})[0]["uid"]
    assert ok(ex.privatePostBrokerNdSetSubaccountAssets, {"subAcct": sub, "ccy": "BTC"}) == [
        {"subAcct": sub, "ccy": "BTC", "amt": "3"}]
    assert ok(ex.privatePostBrokerNdSetSubaccountAssets, {"subAcct": sub, "ccy": "usdt"}) == [
        {"subAcct": sub, "ccy": "USDT", "amt": "10000"}]
    assert ok(ex.privatePostBrokerNdSetSubaccountAssets, {"subAcct": sub, "ccy": "BTC"})[0]["amt"] == "6"
    assert stack.balances(sub_uid)[("18", "BTC")] == Decimal("6")
    journal = stack.call("GET", f"/admin/users/{sub_uid}/journal")
    assert [(j["type"], j["acctType"], j["amount"]) for j in journal if j["ccy"] == "BTC"] == [
        ("demo_top_up", "18", "3"), ("demo_top_up", "18", "3")]
    before = state(stack, demo)
    assert code(ex.privatePostBrokerNdSetSubaccountAssets, {"subAcct": sub, "ccy": "NOPE"}) == "51000"
    assert code(ex.privatePostBrokerNdSetSubaccountAssets, {"subAcct": "nobody123", "ccy": "BTC"}) == "59510"
    assert code(ex.privatePostBrokerNdSetSubaccountAssets, {"subAcct": sub}) == "50014"
    assert state(stack, demo) == before

    live = make_broker(stack)
    lx = okx(stack, live)
    live_sub = name("l")
    ok(lx.privatePostBrokerNdCreateSubaccount, {"subAcct": live_sub})
    before = state(stack, live)
    assert code(lx.privatePostBrokerNdSetSubaccountAssets, {"subAcct": live_sub, "ccy": "BTC"}) == "50053"
    assert state(stack, live) == before
    stack.audit_ok()


# -- who may call --------------------------------------------------------------------------------------

BROKER_CALLS: list[tuple[str, dict[str, str]]] = [
    ("privateGetBrokerNdInfo", {}),
    ("privatePostBrokerNdCreateSubaccount", {"subAcct": "someone123"}),
    ("privatePostBrokerNdDeleteSubaccount", {"subAcct": "{sub}"}),
    ("privateGetBrokerNdSubaccountInfo", {}),
    ("privatePostBrokerNdSubaccountApikey", {"subAcct": "{sub}", "label": "x1", "passphrase": "Aa1!aaaa"}),
    ("privateGetBrokerNdSubaccountApikey", {"subAcct": "{sub}"}),
    ("privatePostBrokerNdSubaccountModifyApikey", {"subAcct": "{sub}", "apiKey": "x", "label": "y"}),
    ("privatePostBrokerNdSubaccountDeleteApikey", {"subAcct": "{sub}", "apiKey": "x"}),
    ("privatePostBrokerNdSetSubaccountLevel", {"subAcct": "{sub}", "acctLv": "2"}),
    ("privatePostBrokerNdSetSubaccountFeeRate", {"subAcct": "{sub}", "chgType": "absolute", "chgTaker": "1"}),
    ("privatePostBrokerNdSetSubaccountAssets", {"subAcct": "{sub}", "ccy": "BTC"}),
    ("privatePostBrokerNdReportSubaccountIp", {"subAcct": "{sub}", "clientIP": "1.1.1.1"}),
]


def test_broker_routes_refuse_non_brokers_sub_keys_and_other_brokers(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub = name("w")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    sub_creds = sub_key(stack, broker, sub)
    plain = stack.new_user(funds={"USDT": "5"})
    other = make_broker(stack)
    disabled = make_broker(stack)
    stack.call("PUT", f"/admin/brokers/{disabled.uid}", json={"enabled": False})
    before = state(stack, broker)
    for method, raw in BROKER_CALLS:
        params = {k: v.replace("{sub}", sub) for k, v in raw.items()}
        assert code(getattr(okx(stack, sub_creds), method), params) == "59604", method
        assert code(getattr(okx(stack, plain), method), params) == "59608", method
        assert code(getattr(okx(stack, disabled), method), params) == "59608", method
        if "subAcct" in params and method != "privatePostBrokerNdCreateSubaccount":
            demo_only = method == "privatePostBrokerNdSetSubaccountAssets"  # a live broker: 50053 first
            assert code(getattr(okx(stack, other), method), params) == ("50053" if demo_only else "59510"), method
    # another broker cannot fund, drain or parent it either
    ox = okx(stack, other)
    assert code(ox.privatePostAssetTransfer, {"ccy": "USDT", "amt": "1", "from": "6", "to": "6", "type": "1",
                                              "subAcct": sub}) == "58115"
    assert code(ox.privatePostBrokerNdCreateSubaccount, {"subAcct": name("x"), "mainAcct": sub}) == "59622"
    assert state(stack, broker) == before
    stack.audit_ok()
    assert ok(ox.privateGetBrokerNdInfo)[0]["subAcctQty"] == "0"
    stack.audit_ok()


def test_max_sub_accounts_and_level_figures(stack: Stack) -> None:
    broker = make_broker(stack, maxSubAcctQty=2)
    ex = okx(stack, broker)
    assert ok(ex.privateGetBrokerNdInfo)[0]["maxSubAcctQty"] == "2"
    first = name("m")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": first})
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": name("m"), "mainAcct": first})  # both levels count
    before = state(stack, broker)
    assert code(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": name("m")}) == "59603"
    assert state(stack, broker) == before
    stack.audit_ok()
    stack.call("PUT", f"/admin/brokers/{broker.uid}", json={"clearMaxSubAcctQty": True, "level": 3})
    info = ok(ex.privateGetBrokerNdInfo)[0]
    assert (info["level"], info["maxSubAcctQty"], info["subAcctQty"]) == ("lv3", "5000", "2")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": name("m")})
    listed = [b for b in stack.call("GET", "/admin/brokers") if b["uid"] == broker.uid]
    assert listed[0]["subAcctQty"] == "3" and listed[0]["maxSubAcctQtyOverride"] is None
    assert stack.admin.put(f"/admin/brokers/{broker.uid}", json={"level": 6}).status_code == 422
    sub_uid = stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts")[0]["uid"]
    assert stack.admin.put(f"/admin/brokers/{sub_uid}", json={}).status_code == 400  # a sub-account
    stack.audit_ok()


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({"subAcct": "abc12"}, "51000"),  # 5 characters
    ({"subAcct": "abcdefghij0123456789x"}, "51000"),  # 21 characters
    ({"subAcct": "1234567890"}, "51000"),  # all digits
    ({"subAcct": "brökerTest1"}, "51000"),  # unicode
    ({"subAcct": "broker test"}, "51000"),  # space
    ({"subAcct": "broker-test"}, "51000"),
    ({}, "50014"),
    ({"subAcct": "{ok}", "label": "x" * 51}, "51000"),
    ({"subAcct": "{ok}", "label": "bad label"}, "51000"),
    ({"subAcct": "{ok}", "label": "étiquette"}, "51000"),
    ({"subAcct": "{ok}", "clientIP": "300.1.1.1"}, "51000"),
    ({"subAcct": "{ok}", "mainAcct": "nobody12345"}, "59622"),
    ({"subAcct": "{ok}", "mainAcct": "{second}"}, "59622"),  # no third level
])
def test_create_sub_account_bad_input(stack: Stack, params: dict[str, str], expected: str) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    first, second = name("p"), name("q")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": first})
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": second, "mainAcct": first})
    fresh = name("r")
    sent = {k: v.replace("{ok}", fresh).replace("{second}", second) for k, v in params.items()}
    before = state(stack, broker)
    got = reply(ex.privatePostBrokerNdCreateSubaccount, sent)
    assert got["code"] == expected, got
    if expected == "51000":
        assert any(f in got["msg"] for f in ("subAcct", "label", "clientIP")), got
    assert state(stack, broker) == before
    stack.audit_ok()


def test_names_are_case_sensitive_and_unique_across_the_platform(stack: Stack) -> None:
    broker, other = make_broker(stack), make_broker(stack)
    base = name("Case")
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": base, "label": "12345"})
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": base.lower()})
    before = state(stack, other)
    assert code(okx(stack, other).privatePostBrokerNdCreateSubaccount, {"subAcct": base}) == "59601"
    assert state(stack, other) == before
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": "x" * 6 + secrets.token_hex(7)})  # 20


@pytest.mark.parametrize(("params", "expected"), [
    ({"acctLv": "5"}, "51000"),
    ({"acctLv": "0"}, "51000"),
    ({"acctLv": "1.0"}, "51000"),
    ({"acctLv": "spot"}, "51000"),
    ({}, "50014"),
])
def test_set_level_bad_input(stack: Stack, params: dict[str, str], expected: str) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub = name("v")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    before = state(stack, broker)
    got = reply(ex.privatePostBrokerNdSetSubaccountLevel, {"subAcct": sub, **params})
    assert got["code"] == expected and "acctLv" in got["msg"], got
    assert state(stack, broker) == before
    stack.audit_ok()


def _days(stack: Stack, n: int) -> str:
    return (admin_now(stack).astimezone(HKT).date() + dt.timedelta(days=n)).strftime("%Y%m%d")


@pytest.mark.parametrize(("params", "expected", "field"), [
    ({"chgType": "absolute", "chgTaker": "1000.1"}, "51000", "chgTaker"),  # above 1000 bp
    ({"chgType": "absolute", "chgTaker": "-1"}, "51000", "chgTaker"),
    ({"chgType": "absolute", "chgTaker": "0.05"}, "51000", "chgTaker"),  # finer than 0.1 bp
    ({"chgType": "absolute", "chgMaker": "1e2"}, "51000", "chgMaker"),
    ({"chgType": "percentage", "chgTaker": "10001"}, "51000", "chgTaker"),
    ({"chgType": "percentage", "chgTaker": "1.5"}, "51000", "chgTaker"),  # whole percent only
    ({"chgType": "fixed", "chgTaker": "1"}, "51000", "chgType"),
    ({"chgTaker": "1"}, "50014", "chgType"),
    ({"chgType": "absolute"}, "50014", "chgTaker"),
    ({"chgType": "absolute", "chgTaker": "1", "effDate": "{today}"}, "51000", "effDate"),
    ({"chgType": "absolute", "chgTaker": "1", "effDate": "{yesterday}"}, "51000", "effDate"),
    ({"chgType": "absolute", "chgTaker": "1", "effDate": "2021-12-19"}, "51000", "effDate"),
    ({"chgType": "absolute", "chgTaker": "1", "effDate": "20211332"}, "51000", "effDate"),
    ({"chgType": "absolute", "chgTaker": "1", "instType": "BOND"}, "51000", "instType"),
    ({"chgType": "absolute", "chgTaker": "1", "quoteCcyType": "2"}, "50014", "instType"),
    ({"chgType": "absolute", "chgTaker": "1", "instType": "SWAP", "quoteCcyType": "2"}, "51000", "quoteCcyType"),
    ({"chgType": "absolute", "chgTaker": "1", "instType": "SPOT", "mgnType": "1"}, "51000", "mgnType"),
    ({"chgType": "absolute", "chgTaker": "1", "instType": "SWAP", "mgnType": "4"}, "51000", "mgnType"),
    ({"chgType": "absolute", "chgTaker": "1", "subAcct": "nobody12345"}, "59510", ""),
])
def test_set_fee_rate_bad_input(stack: Stack, params: dict[str, str], expected: str, field: str) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sent = {k: v.replace("{today}", _days(stack, 0)).replace("{yesterday}", _days(stack, -1))
            for k, v in params.items()}
    before = state(stack, broker)
    got = reply(ex.privatePostBrokerNdSetSubaccountFeeRate, sent)
    assert got["code"] == expected and field in got["msg"], got
    assert state(stack, broker) == before
    stack.audit_ok()


def test_fee_rate_limits_are_accepted(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    for params in ({"chgType": "absolute", "chgTaker": "1000", "chgMaker": "0"},
                   {"chgType": "absolute", "chgTaker": "0.1", "instType": "SPOT", "quoteCcyType": "3"},
                   {"chgType": "percentage", "chgMaker": "10000", "instType": "FUTURES", "mgnType": "3"},
                   {"chgType": "percentage", "chgTaker": "0", "effDate": _days(stack, 1)}):
        ok(ex.privatePostBrokerNdSetSubaccountFeeRate, params)
    assert len(stack.call("GET", f"/admin/brokers/{broker.uid}/fee-rates")) == 4


def test_list_and_report_bad_input(stack: Stack) -> None:
    broker = make_broker(stack)
    ex = okx(stack, broker)
    sub = name("z")
    ok(ex.privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    before = state(stack, broker)
    assert code(ex.privateGetBrokerNdSubaccountInfo, {"limit": "101"}) == "51000"
    assert code(ex.privateGetBrokerNdSubaccountInfo, {"limit": "0"}) == "51000"
    assert code(ex.privateGetBrokerNdSubaccountInfo, {"page": "0"}) == "51000"
    assert code(ex.privateGetBrokerNdSubaccountInfo, {"page": "x"}) == "51000"
    assert ok(ex.privateGetBrokerNdSubaccountInfo, {"subAcct": "nobody12345"})[0]["details"] == []
    assert code(ex.privatePostBrokerNdReportSubaccountIp, {"subAcct": sub, "clientIP": "1.2.3"}) == "51000"
    assert code(ex.privatePostBrokerNdReportSubaccountIp, {"subAcct": sub}) == "50014"
    assert code(ex.privatePostBrokerNdReportSubaccountIp, {"subAcct": "nobody12345", "clientIP": "::1"}) == "59510"
    assert code(ex.privatePostBrokerNdDeleteSubaccount, {}) == "50014"
    assert state(stack, broker) == before
    stack.audit_ok()
