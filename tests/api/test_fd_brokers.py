"""FD brokers through python-okx (``Trade`` with ``tag``, ``FDBroker``) and ccxt on SQLite and
PostgreSQL: the operator sets a broker up; users' orders tagged with its code earn it
``ratio x netFee``, of which the user gets ``clientRebateRatio``; untagged, unknown-tag and the
broker's own orders earn nothing. The run's payouts, the detail file and ``if-rebate``'s four
answers are checked against amounts computed here from the fills. Bad input changes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
import okx.FDBroker as OkxFD
import okx.Funding as OkxFunding
import okx.Trade as OkxTrade

from stakehouse.db.tables import fd_brokers, rebate_files
from tests.api.test_broker_api import make_broker, okx, reply
from tests.api.test_trading_broker import fixed_price, funded_sub
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal
E8 = D("0.00000001")
FD_COLUMNS = ["brokerCode", "level", "instId", "ordId", "spotTradeAmt", "derivativeTradeAmt", "fee", "netFee",
              "settlementFee", "brokerRebate", "suBrokerRebate", "userRebate", "affiliated", "ts"]


def down(x: Decimal) -> Decimal:
    return x.quantize(E8, rounding=ROUND_DOWN)


def shares(fill: dict[str, Any], ratio: Decimal, client: Decimal) -> tuple[Decimal, Decimal]:
    """(broker, user) of one tagged fill, computed here: the whole rebate rounded down, the user's
    part of it rounded down, the broker the rest."""
    whole = down(ratio * D(fill["netFeeUsdt"]))
    user = down(whole * client)
    return whole - user, user


def fd_broker(stack: Stack, *, types: tuple[str, ...] = ("api",), ratio: str = "0.3", client: str = "0.2") -> tuple[
        Creds, str]:
    c = stack.new_user(env="live", funds={"USDT": "1"})
    got = stack.call("PUT", f"/admin/fd-brokers/{c.uid}", json={"types": list(types), "ratio": ratio,
                                                                "clientRebateRatio": client})
    assert len(got["brokerCode"]) == 16 and got["types"] == list(types)
    return c, got["brokerCode"]


def trader(stack: Stack, usdt: str = "50000") -> Creds:
    c = stack.new_user(env="live", funds={"USDT": usdt})
    f = OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    assert f.funds_transfer("USDT", usdt, "6", "18")["code"] == "0"
    return c


def buy(stack: Stack, c: Creds, sz: str, tag: str = "") -> dict[str, Any]:
    trade = OkxTrade.TradeAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    placed = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz=sz,
                               tgtCcy="base_ccy", tag=tag)
    assert placed["code"] == "0", placed
    fills: list[dict[str, Any]] = stack.call("GET", f"/admin/users/{c.uid}/fills")
    return next(f for f in fills if f["ordId"] == placed["data"][0]["ordId"])


def fd_api(stack: Stack, c: Creds) -> OkxFD.FDBrokerAPI:
    return OkxFD.FDBrokerAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def answer_month(stack: Stack) -> str:
    """This HKT month (``YYYYMM``) by the sandbox clock."""
    now = dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"])
    return now.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m")


def if_rebate(stack: Stack, c: Creds, params: dict[str, Any]) -> dict[str, Any]:
    return reply(okx(stack, c).privateGetBrokerFdIfRebate, params)


def test_tagged_fills_pay_the_broker_and_the_user(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock: a server of its own
    broker, code = fd_broker(stack)
    a, b = trader(stack), trader(stack)
    stack.call("PUT", f"/admin/fd-brokers/{broker.uid}/affiliates/{a.uid}", json={"on": True})
    fixed_price(stack, "BTC-USDT", "60000")
    tagged_a = [buy(stack, a, "0.01", code), buy(stack, a, "0.003", code)]
    tagged_b = [buy(stack, b, "0.02", code)]
    buy(stack, a, "0.01")  # untagged
    buy(stack, b, "0.01", "ccxtUnknownCode1")  # a code nobody has
    stack.call("POST", f"/admin/users/{broker.uid}/deposits", json={"ccy": "USDT", "amt": "1000"})
    f = OkxFunding.FundingAPI(broker.api_key, broker.secret, broker.passphrase, False, broker.flag,
                              domain=stack.base_url, debug=False)
    assert f.funds_transfer("USDT", "1000", "6", "18")["code"] == "0"
    buy(stack, broker, "0.001", code)  # the broker's own order
    before = {c.uid: stack.balances(c.uid)[("6", "USDT")] for c in (broker, a, b)}

    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    ratio, client = D("0.3"), D("0.2")
    split_a = [shares(x, ratio, client) for x in tagged_a]
    split_b = [shares(x, ratio, client) for x in tagged_b]
    to_broker = sum(s for s, _ in split_a + split_b)
    assert to_broker > 0
    assert stack.balances(broker.uid)[("6", "USDT")] == before[broker.uid] + to_broker
    assert stack.balances(a.uid)[("6", "USDT")] == before[a.uid] + sum(u for _, u in split_a)
    assert stack.balances(b.uid)[("6", "USDT")] == before[b.uid] + sum(u for _, u in split_b)
    records = {r["uid"]: r for r in stack.call("GET", f"/admin/fd-brokers/{broker.uid}/rebates")}
    assert set(records) == {a.uid, b.uid}
    assert (records[a.uid]["affiliated"], records[b.uid]["affiliated"]) == (True, False)
    day = records[a.uid]["day"]

    # the detail file, through python-okx's FDBroker
    api = fd_api(stack, broker)
    end = (dt.datetime.strptime(day, "%Y%m%d") + dt.timedelta(days=1)).strftime("%Y%m%d")
    asked = api.generate_rebate_details_download_link(begin=day, end=end)
    assert asked["code"] == "0" and asked["data"][0]["result"] == "false", asked
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})
    listed = api.get_rebate_details_download_link(type="false", begin=day, end=end)
    assert listed["code"] == "0" and listed["data"][0]["state"] == "finished", listed
    got = httpx.get(listed["data"][0]["fileHref"], timeout=10)
    assert got.status_code == 200
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert list(rows[0]) == FD_COLUMNS
    by_ord = {r["ordId"]: r for r in rows}
    assert set(by_ord) == {x["ordId"] for x in tagged_a + tagged_b}
    for fill, (to_b, to_u) in zip(tagged_a + tagged_b, split_a + split_b, strict=True):
        row = by_ord[fill["ordId"]]
        assert (D(row["brokerRebate"]), D(row["userRebate"]), row["suBrokerRebate"]) == (to_b, to_u, "0")
        assert (row["brokerCode"], row["level"], row["netFee"], row["spotTradeAmt"], row["ts"]) == (
            code, "Lv1", fill["netFeeUsdt"], fill["amtUsdt"], fill["ts"])
        assert row["affiliated"] == ("true" if fill in tagged_a else "false")
    stack.call("POST", "/admin/clock/advance", json={"seconds": 2 * 3600 + 1})  # FD links last 2 hours
    assert httpx.get(listed["data"][0]["fileHref"], timeout=10).status_code == 403

    # if-rebate: 0 (with affiliation and the client ratio), 3 above VIP5, 2 at a reached VIP4 cap, 1 expired
    got = if_rebate(stack, broker, {"apiKey": a.api_key})
    assert got["data"] == [{"affiliated": True, "brokerCode": code, "type": "0", "clientRebateRatio": "0.2",
                            "lastRebate": ""}], got
    stack.call("PUT", f"/admin/users/{a.uid}/fee-level", json={"level": "VIP6"})
    assert if_rebate(stack, broker, {"apiKey": a.api_key})["data"][0]["type"] == "3"
    stack.call("PUT", f"/admin/users/{b.uid}/fee-level", json={"level": "VIP4"})
    stack.call("PUT", "/admin/rebates/caps/VIP4", json={"monthlyCap": "0.0000001"})
    month_b = D(records[b.uid]["brokerRebate"]) + D(records[b.uid]["userRebate"])
    answer = if_rebate(stack, broker, {"apiKey": b.api_key})["data"][0]
    stack.call("PUT", "/admin/rebates/caps/VIP4", json={"monthlyCap": None})
    if records[b.uid]["day"][:6] != answer_month(stack):  # the fills were last month
        assert (answer["type"], answer["lastRebate"]) == ("0", "0")
    else:
        assert (answer["type"], D(answer["lastRebate"])) == ("2", month_b)
    stack.call("PUT", f"/admin/fd-brokers/{broker.uid}/expired", json={"expired": True})
    assert if_rebate(stack, broker, {"apiKey": b.api_key})["data"][0]["type"] == "1"
    stack.audit_ok()


def test_an_expired_broker_and_top_levels_earn_nothing(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock: a server of its own
    broker, code = fd_broker(stack, ratio="0.5", client="0")
    a, top = trader(stack), trader(stack)
    stack.call("PUT", f"/admin/users/{top.uid}/fee-level", json={"level": "VIP7"})
    fixed_price(stack, "BTC-USDT", "60000")
    buy(stack, a, "0.01", code)
    buy(stack, top, "0.01", code)
    stack.call("PUT", f"/admin/fd-brokers/{broker.uid}/expired", json={"expired": True})
    before = stack.balances(broker.uid)[("6", "USDT")]
    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    records = stack.call("GET", f"/admin/fd-brokers/{broker.uid}/rebates")
    assert {(r["uid"], r["brokerRebate"], r["userRebate"], r["level"]) for r in records} == {
        (a.uid, "0", "0", "Lv1"), (top.uid, "0", "0", "VIP7")}
    assert stack.balances(broker.uid)[("6", "USDT")] == before
    stack.audit_ok()


def test_fd_bad_input_changes_nothing(stack: Stack) -> None:
    broker, code = fd_broker(stack)
    both, _ = fd_broker(stack, types=("api", "oauth"))
    nd = make_broker(stack)
    nd_sub = funded_sub(stack, nd, "10")
    user = trader(stack, "10")
    plain = stack.new_user(env="live")
    with stack.services.db.read() as conn:
        files_before = len(conn.execute(rebate_files.select()).all())
    cases: list[tuple[Creds, dict[str, Any], str]] = [
        (broker, {}, "50014"), (broker, {"apiKey": "no-such-key"}, "50119"),
        (broker, {"apiKey": nd_sub.api_key}, "50119"),  # another broker's sub-account
        (broker, {"apiKey": user.api_key, "brokerType": "oauth"}, "51000"),  # a type it lacks
        (broker, {"apiKey": user.api_key, "brokerType": "x"}, "51000"),
        (both, {"apiKey": user.api_key}, "51000"),  # two types: brokerType required
        (plain, {"apiKey": user.api_key}, "59608"), (nd, {"apiKey": user.api_key}, "59608"),
        (nd_sub, {"apiKey": user.api_key}, "59604"),
    ]
    for caller, params, want in cases:
        got = if_rebate(stack, caller, params)
        assert got["code"] == want, (params, got)
    assert if_rebate(stack, both, {"apiKey": user.api_key, "brokerType": "api"})["data"][0]["type"] == "0"
    api = fd_api(stack, broker)
    for begin, end, want in [("20260105", "20260101", "59616"), ("20260101", "20260801", "59615"),
                             ("2026010", "20260102", "51000"), ("", "20260102", "50014")]:
        assert api.generate_rebate_details_download_link(begin=begin, end=end)["code"] == want
    assert fd_api(stack, both).generate_rebate_details_download_link(begin="20260101", end="20260102")[
        "code"] == "51000"  # no brokerType
    assert fd_api(stack, plain).get_rebate_details_download_link(type="true")["code"] == "59608"
    assert api.get_rebate_details_download_link(type="x")["code"] == "51000"
    # the operator's set-up: bad codes, types, ratios; a code another broker has; a sub-account
    for body in [{"types": [], "ratio": "0.3"}, {"types": ["web"], "ratio": "0.3"}, {"types": ["api"], "ratio": "1.5"},
                 {"types": ["api"], "ratio": "0.3", "code": "short"}, {"types": ["api"], "ratio": "-0.1"},
                 {"types": ["api"], "ratio": "0.3", "clientRebateRatio": "0.000000001"}]:
        assert stack.admin.put(f"/admin/fd-brokers/{plain.uid}", json=body).status_code == 400, body
    assert stack.admin.put(f"/admin/fd-brokers/{plain.uid}", json={"types": ["api"], "ratio": "0.3",
                                                                   "code": code}).status_code == 409
    assert stack.admin.put(f"/admin/fd-brokers/{nd_sub.uid}", json={"types": ["api"], "ratio": "0.3"}
                           ).status_code == 400
    with stack.services.db.read() as conn:
        assert conn.execute(fd_brokers.select().where(fd_brokers.c.uid == plain.uid)).first() is None
        assert len(conn.execute(rebate_files.select()).all()) == files_before
