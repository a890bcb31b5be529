"""An ND broker's sub-accounts trading, on SQLite and PostgreSQL: the broker's markup in force at
each fill (set the day before applies, one set for tomorrow does not), contract credits activated,
used up over several fills and expiring unused, with 50063 for every credit that cannot be
activated, and the audit after each."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from typing import Any

import okx.Funding as OkxFunding
import okx.Trade as OkxTrade

from tests.api.test_broker_api import HKT, admin_now, make_broker, name, ok, okx, reply, sub_key
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal


def funded_sub(stack: Stack, broker: Creds, usdt: str = "10000") -> Creds:
    sub = name("t")
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    c = sub_key(stack, broker, sub)
    stack.call("POST", f"/admin/users/{c.uid}/deposits", json={"ccy": "USDT", "amt": usdt})
    f = OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    assert f.funds_transfer("USDT", usdt, "6", "18")["code"] == "0"
    return c


def trade_api(stack: Stack, c: Creds) -> OkxTrade.TradeAPI:
    return OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def fixed_price(stack: Stack, inst_id: str, px: str) -> None:
    stack.call("PUT", f"/admin/markets/{inst_id}", json={"vol": "0", "drift": "0"})
    stack.call("POST", f"/admin/markets/{inst_id}/price", json={"px": px})


def buy(stack: Stack, c: Creds, sz: str = "0.01") -> dict[str, Any]:
    placed = trade_api(stack, c).place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz=sz,
                                             tgtCcy="base_ccy")
    assert placed["code"] == "0", placed
    fills: list[dict[str, Any]] = stack.call("GET", f"/admin/users/{c.uid}/fills")
    return next(f for f in fills if f["ordId"] == placed["data"][0]["ordId"])


def test_markup_in_force_at_the_fill(stack: Stack) -> None:
    broker = make_broker(stack)
    c = funded_sub(stack, broker)
    fixed_price(stack, "BTC-USDT", "60000")
    ex = okx(stack, broker)
    now = admin_now(stack)
    later = (now.astimezone(HKT).date() + dt.timedelta(days=3)).strftime("%Y%m%d")
    # 10 bp on takers from the next 00:00 HKT; 50 bp more from three days on
    ok(ex.privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "10", "chgMaker": "5"})
    ok(ex.privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "60", "effDate": later})

    today = buy(stack, c)  # no change in force yet: the base rate only
    assert (today["fee"], today["baseFee"], today["markupFee"], today["feeRate"]) == ("0.00001", "0.00001", "0",
                                                                                      "0.001")
    assert today["brokerUid"] == broker.uid and today["amtUsdt"] == "600" and today["feeUsdt"] == "0.6"

    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    fixed_price(stack, "BTC-USDT", "60000")
    tomorrow = buy(stack, c)  # the change set the day before applies; the one for later does not
    assert (tomorrow["fee"], tomorrow["baseFee"], tomorrow["markupFee"], tomorrow["feeRate"]) == (
        "0.00002", "0.00001", "0.00001", "0.002")
    # netFee is the base fee paid in money (spec 5), the markup is apart: 0.6 + 0.6 = the 1.2 fee
    assert (tomorrow["feeUsdt"], tomorrow["netFeeUsdt"], tomorrow["markupUsdt"]) == ("1.2", "0.6", "0.6")

    # a level's base rate is the operator's: VIP1 here, and the markup stays on top of it
    stack.call("PUT", "/admin/fee-levels/VIP1", json={"taker": "0.0005", "maker": "0.0004"})
    stack.call("PUT", f"/admin/users/{c.uid}/fee-level", json={"level": "VIP1"})
    vip = buy(stack, c, "0.1")
    assert (vip["fee"], vip["baseFee"], vip["markupFee"]) == ("0.00015", "0.00005", "0.0001")
    stack.audit_ok()


def test_credits_are_activated_used_up_over_fills_and_expire(stack: Stack) -> None:
    broker = make_broker(stack)
    c = funded_sub(stack, broker, "100000")
    other = funded_sub(stack, broker, "10")
    fixed_price(stack, "BTC-USDT", "50000")
    now_ms = int(admin_now(stack).timestamp() * 1000)
    day = 86_400_000
    grant = {"uid": c.uid, "amt": "1", "activateExpTime": str(now_ms + day), "validPeriod": str(7 * day)}
    credit = stack.call("POST", "/admin/credits", json=grant)
    unused = stack.call("POST", "/admin/credits", json={**grant, "amt": "5"})
    sub = okx(stack, c)

    listed = ok(lambda p: sub.request("broker/nd/credits", ["private"], "GET", p))
    assert {x["creditId"]: (x["state"], x["amt"], x["useExpTime"]) for x in listed} == {
        credit["creditId"]: ("unactivated", "1", ""), unused["creditId"]: ("unactivated", "5", "")}
    activate = lambda p: sub.request("broker/nd/activate-credit", ["private"], "POST", p)  # noqa: E731
    assert ok(activate, {"creditId": credit["creditId"]}) == [{"result": True}]
    # twice, another's, an unknown one: 50063, nothing changed
    assert reply(activate, {"creditId": credit["creditId"]})["code"] == "50063"
    assert reply(lambda p: okx(stack, other).request("broker/nd/activate-credit", ["private"], "POST", p),
                 {"creditId": unused["creditId"]})["code"] == "50063"
    assert reply(activate, {"creditId": "999999999"})["code"] == "50063"
    active = ok(lambda p: sub.request("broker/nd/credits", ["private"], "GET", p), {"state": "activated"})
    assert [x["creditId"] for x in active] == [credit["creditId"]]
    # useExpTime = activation time + validPeriod (the sandbox clock runs on between the two reads)
    assert 0 <= int(active[0]["useExpTime"]) - (now_ms + 7 * day) < 60_000

    # 0.01 BTC at 50000: fee 0.00001 BTC = 0.5 USDT, all paid by the credit
    first = buy(stack, c)
    assert (first["fee"], first["creditFee"], first["netFeeUsdt"]) == ("0.00001", "0.00001", "0")
    # the next 0.5 USDT of fees uses it up exactly; the third pays in money
    second = buy(stack, c)
    assert second["creditFee"] == "0.00001"
    third = buy(stack, c)
    assert (third["creditFee"], third["netFeeUsdt"]) == ("0", "0.5")
    got = {x["creditId"]: x for x in stack.call("GET", "/admin/credits", params={"uid": c.uid})}
    assert got[credit["creditId"]]["used"] == "1"
    # received: 3 x 0.01 BTC less the one fee paid in money
    assert stack.balances(c.uid)[("18", "BTC")] == D("0.02999")

    # the unactivated credit expires a day later; the used one at its use deadline
    stack.call("POST", "/admin/clock/advance", json={"days": 2})
    states = {x["creditId"]: x["state"] for x in stack.call("GET", "/admin/credits", params={"uid": c.uid})}
    assert states == {credit["creditId"]: "activated", unused["creditId"]: "expired"}
    assert reply(activate, {"creditId": unused["creditId"]})["code"] == "50063"
    stack.call("POST", "/admin/clock/advance", json={"days": 6})
    states = {x["creditId"]: x["state"] for x in stack.call("GET", "/admin/credits", params={"uid": c.uid})}
    assert states[credit["creditId"]] == "expired"
    stack.audit_ok()


def test_credits_only_for_nd_sub_accounts(stack: Stack) -> None:
    plain = stack.new_user(env="live")
    now_ms = int(admin_now(stack).timestamp() * 1000)
    r = stack.admin.post("/admin/credits", json={"uid": plain.uid, "amt": "1", "activateExpTime": str(now_ms + 10**7),
                                                 "validPeriod": "86400000"})
    assert r.status_code >= 400 and "sub-account" in r.text
    ex = okx(stack, plain)
    assert reply(lambda p: ex.request("broker/nd/activate-credit", ["private"], "POST", p),
                 {"creditId": "1"})["code"] == "50030"


def test_a_credit_pays_the_base_fee_first_then_the_markup(stack: Stack) -> None:
    """netFee (the base fee paid in money) and markupFee (the markup paid in money) are what rebates
    are computed from (spec 5): a credit takes the base fee first, then the markup."""
    broker = make_broker(stack)
    c = funded_sub(stack, broker)
    ok(okx(stack, broker).privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "10"})
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # the change is in force from 00:00 HKT
    fixed_price(stack, "BTC-USDT", "50000")
    now_ms = int(admin_now(stack).timestamp() * 1000)
    credit = stack.call("POST", "/admin/credits", json={"uid": c.uid, "amt": "0.9", "validPeriod": "86400000",
                                                        "activateExpTime": str(now_ms + 10**7)})
    sub = okx(stack, c)
    assert ok(lambda p: sub.request("broker/nd/activate-credit", ["private"], "POST", p),
              {"creditId": credit["creditId"]}) == [{"result": True}]
    # 0.01 BTC at 50000: fee 0.00002 BTC = 1 USDT (0.5 base + 0.5 markup); the 0.9 credit pays
    # 0.000018 BTC of it: the whole base fee and 0.4 USDT of the markup
    fill = buy(stack, c)
    assert (fill["fee"], fill["baseFee"], fill["markupFee"], fill["creditFee"]) == ("0.00002", "0.00001", "0.00001",
                                                                                   "0.000018")
    assert (fill["feeUsdt"], fill["netFeeUsdt"], fill["markupUsdt"]) == ("1", "0", "0.1")
    assert stack.balances(c.uid)[("18", "BTC")] == D("0.009998")  # 0.01 less the 0.000002 paid in money
    stack.audit_ok()
