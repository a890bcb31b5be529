"""ND broker rebates through ccxt's ``request`` on SQLite and PostgreSQL: a day of fills of two
sub-accounts, the run at 00:00 HKT of the next day, ``rebate-daily`` checked against the rebates
computed here from the fills (``ratio * netFee + markupFee`` per fill, rounded down to 8
decimals), the payout in the broker's funding account, ``if-rebate``'s three answers, bad input,
and the audit."""

from __future__ import annotations

import warnings
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tests.api.test_broker_api import make_broker, name, ok, okx, reply
from tests.api.test_trading_broker import buy, fixed_price, funded_sub
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal


def nd(stack: Stack, c: Creds, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    ex = okx(stack, c)
    return reply(lambda p: ex.request(f"broker/nd/{path}", ["private"], "GET", p), params or {})


def expected(fills: list[dict[str, Any]], ratio: Decimal) -> Decimal:
    return sum((((ratio * D(f["netFeeUsdt"]) + D(f["markupUsdt"])) / D("0.00000001")).to_integral_value(ROUND_FLOOR)
                * D("0.00000001") for f in fills), D(0))


def test_a_day_of_fills_is_recorded_and_paid_the_next_day(stack: Stack) -> None:
    broker = make_broker(stack, funds={"USDT": "1"})
    one, two = funded_sub(stack, broker, "50000"), funded_sub(stack, broker, "50000")
    ok(okx(stack, broker).privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "10"})
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # the markup is in force from 00:00 HKT
    fixed_price(stack, "BTC-USDT", "60000")
    fills_one = [buy(stack, one, "0.01"), buy(stack, one, "0.003")]
    fills_two = [buy(stack, two, "0.02")]
    before = stack.balances(broker.uid)[("6", "USDT")]
    assert nd(stack, broker, "if-rebate", {"subAcct": "x" + one.uid})["code"] == "59510"

    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # past 00:00 HKT: the run
    got = nd(stack, broker, "rebate-daily")
    assert got["code"] == "0", got
    data = got["data"][0]
    names = {s["uid"]: s["subAcct"] for s in stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts")}
    details = {d["subAcct"]: d for d in data["details"]}
    assert set(details) == {names[one.uid], names[two.uid]}
    income_one, income_two = expected(fills_one, D("0.4")), expected(fills_two, D("0.4"))
    assert D(details[names[one.uid]]["income"]) == income_one
    assert D(details[names[two.uid]]["income"]) == income_two
    # fees as the seed shows them: netFee positive, markupFee negative
    assert D(details[names[one.uid]]["netFee"]) == sum((D(f["netFeeUsdt"]) for f in fills_one), D(0))
    assert D(details[names[one.uid]]["markupFee"]) == -sum((D(f["markupUsdt"]) for f in fills_one), D(0))
    assert D(data["totIncome"]) == income_one + income_two and data["totPage"] == "1" and data["page"] == "1"
    assert details[names[one.uid]]["incomeCat"] == {"spot": details[names[one.uid]]["income"], "derivative": "0",
                                                   "convert": "0"}
    assert stack.balances(broker.uid)[("6", "USDT")] == before + income_one + income_two
    # paging and filters
    paged = nd(stack, broker, "rebate-daily", {"limit": "1", "page": "2"})["data"][0]
    assert (paged["totPage"], paged["page"], len(paged["details"])) == ("2", "2", 1)
    only = nd(stack, broker, "rebate-daily", {"subAcct": names[two.uid]})["data"][0]
    assert [d["subAcct"] for d in only["details"]] == [names[two.uid]] and D(only["totIncome"]) == income_two
    date = details[names[one.uid]]["rebateDate"]
    assert nd(stack, broker, "rebate-daily", {"end": date})["data"][0]["details"] == []  # end is exclusive
    assert len(nd(stack, broker, "rebate-daily", {"begin": date})["data"][0]["details"]) == 2

    # if-rebate: 0, then 3 in VIP fee-rate mode; by apiKey > uid > subAcct
    assert nd(stack, broker, "if-rebate", {"apiKey": one.api_key})["data"] == [{"type": "0", "lastRebate": ""}]
    stack.call("PUT", f"/admin/users/{two.uid}/vip-fee-mode", json={"on": True})
    assert nd(stack, broker, "if-rebate", {"uid": two.uid, "subAcct": "ignored"})["data"][0]["type"] == "3"
    # 2: at VIP4 with the month's cap reached; lastRebate is the month's rebate
    stack.call("PUT", f"/admin/users/{one.uid}/fee-level", json={"level": "VIP4"})
    stack.call("PUT", "/admin/rebates/caps/VIP4", json={"monthlyCap": str(income_one)})
    if date.endswith("01"):  # the fills' day was last month: this month has no rebate yet
        assert nd(stack, broker, "if-rebate", {"subAcct": names[one.uid]})["data"] == [
            {"type": "0", "lastRebate": "0"}]
    else:
        assert nd(stack, broker, "if-rebate", {"subAcct": names[one.uid]})["data"] == [
            {"type": "2", "lastRebate": str(income_one)}]
    stack.call("PUT", "/admin/rebates/caps/VIP4", json={"monthlyCap": None})
    records = stack.call("GET", f"/admin/brokers/{broker.uid}/rebates")
    assert sorted(D(r["income"]) for r in records) == sorted([income_one, income_two])
    stack.audit_ok()


def test_vip_mode_and_caps_limit_what_the_run_pays(stack: Stack) -> None:
    broker = make_broker(stack, funds={"USDT": "1"})
    capped, vip = funded_sub(stack, broker, "50000"), funded_sub(stack, broker, "50000")
    stack.call("PUT", f"/admin/users/{capped.uid}/fee-level", json={"level": "VIP5"})
    stack.call("PUT", "/admin/rebates/caps/VIP5", json={"monthlyCap": "0.1"})
    stack.call("PUT", f"/admin/users/{vip.uid}/vip-fee-mode", json={"on": True})
    fixed_price(stack, "BTC-USDT", "60000")
    buy(stack, capped, "0.01")  # 0.4 x 0.6 USDT of base fee = 0.24 USDT, over the 0.1 cap
    buy(stack, vip, "0.01")
    before = stack.balances(broker.uid)[("6", "USDT")]
    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    records = {r["uid"]: r for r in stack.call("GET", f"/admin/brokers/{broker.uid}/rebates")}
    assert (records[capped.uid]["income"], records[vip.uid]["income"]) == ("0.1", "0")
    assert records[vip.uid]["netFee"] == "0.6"  # the fees are still recorded
    assert stack.balances(broker.uid)[("6", "USDT")] == before + D("0.1")
    stack.call("PUT", "/admin/rebates/caps/VIP5", json={"monthlyCap": None})
    stack.audit_ok()


def test_rebate_routes_bad_input_changes_nothing(stack: Stack) -> None:
    broker = make_broker(stack)
    sub = funded_sub(stack, broker, "10")
    other = make_broker(stack)
    stranger = funded_sub(stack, other, "10")
    plain = stack.new_user(env="live")
    for params, code in [({"begin": "2026-12-01"}, "51000"), ({"begin": "20261301"}, "51000"),
                         ({"begin": "\u0662\u0660\u0662\u0666\u0661\u0662\u0660\u0661"}, "51000"),
                         ({"begin": "20261202", "end": "20261201"}, "51000"), ({"limit": "101"}, "51000"),
                         ({"page": "0"}, "51000"), ({"page": "x"}, "51000"), ({"beginTime": "-1"}, "51000"),
                         ({"subAcct": name("nope")}, "59510")]:
        got = nd(stack, broker, "rebate-daily", params)
        assert got["code"] == code, (params, got)
    for params, code in [({}, "51000"), ({"apiKey": "no-such-key"}, "50119"), ({"apiKey": stranger.api_key}, "59510"),
                         ({"uid": stranger.uid}, "59510"), ({"uid": "12a"}, "51000"),
                         ({"subAcct": name("nope")}, "59510")]:
        got = nd(stack, broker, "if-rebate", params)
        assert got["code"] == code, (params, got)
    for who, code in ((sub, "59604"), (plain, "59608")):
        assert nd(stack, who, "rebate-daily")["code"] == code
        assert nd(stack, who, "if-rebate", {"subAcct": "x"})["code"] == code
    for body, status in (({"ratio": "1.5"}, 400), ({"ratio": "-0.1"}, 400), ({"ratio": "0.1234567891"}, 400)):
        assert stack.admin.put("/admin/rebates/ratios/1", json=body).status_code == status
    assert stack.admin.put("/admin/rebates/caps/VIP1", json={"monthlyCap": "5"}).status_code == 400
    assert stack.admin.put(f"/admin/users/{plain.uid}/vip-fee-mode", json={"on": True}).status_code == 400
    assert stack.call("GET", "/admin/rebates/settings")["ratios"]["1"] == "0.4"
    stack.audit_ok()
