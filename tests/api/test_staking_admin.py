"""Operator controls for liquid staking over HTTP (``/admin/staking``), on SQLite and PostgreSQL:
settings, rates, the redemption queue, reward runs and reversals (rules section 7)."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import okx.Finance.EthStaking as OkxEth
import okx.Finance.SolStaking as OkxSol

from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

P = "/admin/staking"


def eth(stack: Stack, c: Creds) -> OkxEth.EthStakingAPI:
    return OkxEth.EthStakingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def staker(stack: Stack, funds: str = "5") -> Creds:
    c = stack.new_user(funds={"ETH": funds})
    stack.call("POST", f"/admin/users/{c.uid}/terms", json={"product": "ETH"})
    return c


def ok(reply: dict[str, Any]) -> Any:
    assert reply["code"] == "0", reply
    return reply["data"]


def newest_order(stack: Stack, c: Creds) -> str:
    ord_id: str = ok(eth(stack, c).eth_purchase_redeem_history(limit="1"))[0]["ordId"]
    return ord_id


def refused(stack: Stack, method: str, path: str, status: int, **kw: Any) -> str:
    r = stack.admin.request(method, path, **kw)
    assert r.status_code == status, (r.status_code, r.text)
    message: str = r.json()["message"]
    return message


def books(stack: Stack, uid: str) -> dict[tuple[str, str], Decimal]:
    """Free and locked balances by (account type, ccy[:locked])."""
    out = {}
    for r in stack.call("GET", f"/admin/users/{uid}/balances"):
        out[(r["acctType"], r["ccy"])] = Decimal(r["available"])
        out[(r["acctType"], r["ccy"] + ":locked")] = Decimal(r["locked"])
    return out


def advance_days(stack: Stack, days: int) -> list[dict[str, Any]]:
    ran: list[dict[str, Any]] = stack.call("POST", "/admin/clock/advance", json={"days": days})["jobsRun"]
    return ran


# -- products and settings ----------------------------------------------------------------


def test_products_show_every_setting_and_changes_take_effect(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    assert httpx.get(stack.base_url + f"{P}/products").status_code == 401
    listed = stack.call("GET", f"{P}/products")
    assert [p["product"] for p in listed] == ["ETH", "SOL"]
    eth_cfg = stack.call("GET", f"{P}/products/ETH")
    assert eth_cfg == listed[0]
    assert eth_cfg == {
        "product": "ETH", "staked_ccy": "ETH", "token_ccy": "BETH", "precision": 8, "purchase_enabled": True,
        "min_purchase": "0.01", "total_quota": None, "user_quota": None, "min_redeem": "0.00000001",
        "fast_redemption_enabled": True, "fast_redemption_daily_limit": "100", "daily_redemption_cap": None,
        "unbonding_days": 5, "redeem_cancellable": True, "service_fee_rate": "0", "min_kyc_level": 1,
        "sub_accounts_allowed": True}
    assert refused(stack, "GET", f"{P}/products/XRP", 404) == "Staking product XRP does not exist"

    c = stack.new_user(funds={"SOL": "10"})
    sol = OkxSol.SolStakingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    assert ok(sol.sol_product_info()) == {"fastRedemptionDailyLimit": "240", "fastRedemptionAvail": "240"}
    changed = stack.call("PATCH", f"{P}/products/SOL", json={"fast_redemption_daily_limit": "300",
                                                             "daily_redemption_cap": "1000", "unbonding_days": 2})
    assert (changed["fast_redemption_daily_limit"], changed["daily_redemption_cap"], changed["unbonding_days"]) == (
        "300", "1000", 2)
    assert ok(sol.sol_product_info()) == {"fastRedemptionDailyLimit": "300", "fastRedemptionAvail": "300"}
    assert stack.call("GET", f"{P}/products/SOL") == changed
    assert stack.services.staking.product("SOL").daily_redemption_cap == Decimal(1000)
    assert stack.call("PATCH", f"{P}/products/SOL", json={"daily_redemption_cap": None})[
        "daily_redemption_cap"] is None  # back to unlimited

    # unknown settings and bad values: 400 naming the problem, and nothing of the request is applied
    before = stack.call("GET", f"{P}/products/SOL")
    for body, words in [({"nope": "1"}, "unknown setting nope"),
                        ({"product": "XRP"}, "unknown setting product"),
                        ({"fast_redemption_daily_limit": "250", "precision": "x"}, "precision"),
                        ({"fast_redemption_daily_limit": "250", "min_purchase": 0.5}, "as strings"),
                        ({"purchase_enabled": "maybe"}, "true or false"),
                        ({"service_fee_rate": "1.5"}, "between 0 and 1"),
                        ({"min_purchase": "0"}, "min_purchase"),
                        ({"min_purchase": "-1"}, "negative"),
                        ({"min_purchase": None}, "a value is required"),
                        ({"unbonding_days": 400}, "0..365"),
                        ({"precision": "\u00b2"}, "0..18"),  # a digit to str.isdigit, not to int()
                        ({"unbonding_days": "9" * 5000}, "0..365"),
                        ({"min_redeem": {"amt": "1"}}, "min_redeem")]:
        message = refused(stack, "PATCH", f"{P}/products/SOL", 400, json=body)
        assert words in message, (body, message)
    assert stack.call("GET", f"{P}/products/SOL") == before
    assert stack.admin.patch(f"{P}/products/SOL", json=["min_purchase"]).status_code == 422
    assert refused(stack, "PATCH", f"{P}/products/XRP", 404, json={"min_purchase": "1"}).startswith("Staking product")

    # purchase settings apply to the next request
    buyer = staker(stack)
    stack.call("PATCH", f"{P}/products/ETH", json={"purchase_enabled": "false", "min_purchase": "2"})
    assert eth(stack, buyer).eth_purchase(amt="1")["code"] == "51731"
    stack.call("PATCH", f"{P}/products/ETH", json={"purchase_enabled": True})
    reply = eth(stack, buyer).eth_purchase(amt="1")
    assert (reply["code"], reply["msg"]) == ("51727", "The minimum subscription amount is 2 ETH")
    ok(eth(stack, buyer).eth_purchase(amt="2"))
    assert stack.balances(buyer.uid)[("6", "BETH")] == Decimal("2")
    stack.audit_ok()


# -- rates and reward runs ----------------------------------------------------------------


def test_rates_are_published_refused_when_bad_or_final_and_runs_pay_them(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    stack.services.sandbox_clock.freeze()  # type: ignore[union-attr]
    day0 = stack.services.staking.today()
    assert stack.call("GET", f"{P}/products/ETH/rates", params={"days": 5}) == []
    published = stack.call("PUT", f"{P}/products/ETH/rates/{day0}", json={"rate": "0.0284"})
    assert published == {"product": "ETH", "day": day0.isoformat(), "rate": "0.02840000"}
    rates = stack.call("GET", f"{P}/products/ETH/rates", params={"days": 3})
    assert [(r["day"], r["rate"]) for r in rates] == [(day0.isoformat(), "0.02840000")]
    assert rates[0]["start"] == stack.services.calendar.period_of_day(day0).start.isoformat()
    public = OkxEth.EthStakingAPI(flag="0", domain=stack.base_url, debug=False)
    assert [r["rate"] for r in ok(public.eth_apy_history(days="3"))] == ["0.02840000"]

    for rate, words in [("-0.01", "between 0 and 10"), ("0.123456789", "at most 8 decimals"),
                        ("abc", "plain decimal"), ("1e-2", "plain decimal"), ("11", "between 0 and 10")]:
        assert words in refused(stack, "PUT", f"{P}/products/ETH/rates/{day0}", 400, json={"rate": rate}), rate
    assert "day" in refused(stack, "PUT", f"{P}/products/ETH/rates/2026-13-01", 400, json={"rate": "0.01"})
    assert "day" in refused(stack, "PUT", f"{P}/products/ETH/rates/tomorrow", 400, json={"rate": "0.01"})
    refused(stack, "PUT", f"{P}/products/XRP/rates/{day0}", 404, json={"rate": "0.01"})
    for days in (0, 366):
        assert "days" in refused(stack, "GET", f"{P}/products/ETH/rates", 400, params={"days": days})
    assert [r["rate"] for r in stack.call("GET", f"{P}/products/ETH/rates", params={"days": 1})] == ["0.02840000"]

    c = staker(stack, funds="20")
    ok(eth(stack, c).eth_purchase(amt="10"))
    ran = advance_days(stack, 1)  # the reward run for day0: bought on day0, so nothing is eligible
    assert {"job": "staking_rewards:ETH", "period": day0.isoformat()} in [
        {k: j[k] for k in ("job", "period")} for j in ran]
    runs = stack.call("GET", f"{P}/products/ETH/reward-runs")
    assert [(r["day"], r["rate"], r["holders"], r["net"], r["entryId"]) for r in runs] == [
        (day0.isoformat(), "0.02840000", 0, "0", None)]
    message = refused(stack, "PUT", f"{P}/products/ETH/rates/{day0}", 403, json={"rate": "0.05"})
    assert "reward run" in message and day0.isoformat() in message
    assert stack.call("GET", f"{P}/products/ETH/rates", params={"days": 2})[1]["rate"] == "0.02840000"

    day1 = day0 + dt.timedelta(days=1)
    stack.call("PUT", f"{P}/products/ETH/rates/{day1}", json={"rate": "0.0365"})
    stack.call("PATCH", f"{P}/products/ETH", json={"service_fee_rate": "0.1"})  # applies from the next run
    advance_days(stack, 1)
    # 10 BETH held all day1: gross = 10 * 0.0365 / 365 = 0.001, net = 0.0009, fee = 0.0001
    assert stack.call("GET", f"{P}/users/{c.uid}/rewards", params={"product": "ETH"}) == [
        {"product": "ETH", "day": day1.isoformat(), "uid": c.uid, "eligible": "10", "gross": "0.001",
         "net": "0.0009", "fee": "0.0001"}]
    assert stack.call("GET", f"{P}/users/{c.uid}/rewards", params={"product": "SOL"}) == []
    newest = stack.call("GET", f"{P}/products/ETH/reward-runs", params={"limit": 1})
    assert [(r["day"], r["rate"], r["holders"], r["gross"], r["net"], r["fee"]) for r in newest] == [
        (day1.isoformat(), "0.03650000", 1, "0.001", "0.0009", "0.0001")]
    assert newest[0]["entryId"] is not None and newest[0]["ranAt"] is not None
    assert stack.balances(c.uid)[("6", "BETH")] == Decimal("10.0009")
    refused(stack, "GET", f"{P}/users/{c.uid}/rewards", 404, params={"product": "XRP"})
    refused(stack, "GET", f"{P}/users/9999999999999999/rewards", 404)
    refused(stack, "GET", f"{P}/products/XRP/reward-runs", 404)
    stack.audit_ok()


# -- queue and reversal of a delivered redemption -----------------------------------------


def test_queue_is_fifo_with_cap_figures_and_a_delivered_redemption_reverses(
        fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    stack.services.sandbox_clock.freeze()  # type: ignore[union-attr]
    stack.call("PATCH", f"{P}/products/ETH", json={"fast_redemption_enabled": False, "daily_redemption_cap": "1.5",
                                                  "unbonding_days": "1"})
    a, b = staker(stack), staker(stack)
    for c in (a, b):
        ok(eth(stack, c).eth_purchase(amt="3"))
    ok(eth(stack, a).eth_redeem(amt="1"))
    a1 = newest_order(stack, a)
    ok(eth(stack, b).eth_redeem(amt="2"))
    b2 = newest_order(stack, b)
    ok(eth(stack, a).eth_redeem(amt="0.5"))
    a3 = newest_order(stack, a)

    today = stack.services.staking.today()
    q = stack.call("GET", f"{P}/products/ETH/queue")
    assert (q["product"], q["today"], q["dailyRedemptionCap"], q["capUsedToday"], q["unscheduledTotal"]) == (
        "ETH", today.isoformat(), "1.5", "0", "3.5")
    assert [(i["position"], i["ordId"], i["uid"], i["amt"], i["unscheduled"], i["status"], i["fast"])
            for i in q["queue"]] == [(1, a1, a.uid, "1", "1", "pending", False),
                                     (2, b2, b.uid, "2", "2", "pending", False),
                                     (3, a3, a.uid, "0.5", "0.5", "pending", False)]
    assert "pending" in refused(stack, "POST", f"{P}/orders/{a1}/reverse", 403, json={"reason": "test"})

    advance_days(stack, 1)  # settlement of `today`: a1 whole, then 0.5 of b2 (cap 1.5); a3 waits behind b2
    q = stack.call("GET", f"{P}/products/ETH/queue")
    assert (q["capUsedToday"], q["previousDay"], q["capUsedPreviousDay"], q["unscheduledTotal"]) == (
        "0", today.isoformat(), "1.5", "2")
    assert [(i["ordId"], i["unscheduled"], i["scheduledAmt"]) for i in q["queue"]] == [
        (a1, "0", "1"), (b2, "1.5", "0.5"), (a3, "0.5", "0")]

    advance_days(stack, 1)  # a1 delivered (unbonding 1 day)
    order = stack.call("GET", f"{P}/orders/{a1}")
    assert (order["status"], order["redeemingAmt"], order["completedTime"] is not None) == ("success", None, True)
    assert a1 not in [i["ordId"] for i in stack.call("GET", f"{P}/products/ETH/queue")["queue"]]
    before = books(stack, a.uid)
    reversed_ = stack.call("POST", f"{P}/orders/{a1}/reverse", json={"reason": "paid to the wrong user"})
    assert (reversed_["status"], reversed_["reversalReason"]) == ("failed", "paid to the wrong user")
    after = books(stack, a.uid)
    # the delivery is undone (ETH back out, 1 BETH re-minted and locked), then the lock is released
    assert after[("6", "ETH")] == before[("6", "ETH")] - 1
    assert after[("6", "BETH")] == before[("6", "BETH")] + 1
    assert after[("6", "BETH:locked")] == before[("6", "BETH:locked")]
    types = [p["type"] for p in stack.call("GET", f"/admin/users/{a.uid}/journal")]
    assert types.count("reversal") == 4 and "staking_redeem_delivery" in types  # 2 entries x 2 postings
    stack.audit_ok()


# -- reversing a purchase -----------------------------------------------------------------


def test_reverse_a_purchase_with_a_compensating_entry(stack: Stack) -> None:
    c = staker(stack)
    ok(eth(stack, c).eth_purchase(amt="1.25"))
    ord_id = newest_order(stack, c)
    order = stack.call("GET", f"{P}/orders/{ord_id}")
    assert (order["type"], order["amt"], order["status"], order["uid"], order["reversalReason"]) == (
        "purchase", "1.25", "success", c.uid, None)
    assert stack.balances(c.uid)[("6", "BETH")] == Decimal("1.25")

    assert "reason" in refused(stack, "POST", f"{P}/orders/{ord_id}/reverse", 400, json={"reason": "  "})
    done = stack.call("POST", f"{P}/orders/{ord_id}/reverse", json={"reason": "bought by mistake"})
    assert (done["ordId"], done["status"], done["reversalReason"]) == (ord_id, "failed", "bought by mistake")
    b = stack.balances(c.uid)
    assert (b[("6", "ETH")], b[("6", "BETH")]) == (Decimal("5"), Decimal("0"))  # principal back, BETH burnt
    assert stack.call("GET", f"{P}/orders/{ord_id}")["status"] == "failed"
    assert ok(eth(stack, c).eth_purchase_redeem_history())[0]["status"] == "failed"

    journal = stack.call("GET", f"/admin/users/{c.uid}/journal")
    purchase = [p for p in journal if p["type"] == "staking_purchase"]
    reversal = [p for p in journal if p["type"] == "reversal"]
    assert {(p["ccy"], p["amount"]) for p in purchase} == {("ETH", "-1.25"), ("BETH", "1.25")}
    assert {(p["ccy"], p["amount"]) for p in reversal} == {("ETH", "1.25"), ("BETH", "-1.25")}
    assert all(p["ref"] == purchase[0]["entryId"] and "bought by mistake" in p["memo"] for p in reversal)
    assert all(p["ref"] == ord_id for p in purchase)
    stack.audit_ok()

    before = books(stack, c.uid)
    assert "failed" in refused(stack, "POST", f"{P}/orders/{ord_id}/reverse", 403, json={"reason": "again"})
    assert books(stack, c.uid) == before
    assert [p["type"] for p in stack.call("GET", f"/admin/users/{c.uid}/journal")].count("reversal") == 2
    for missing in ("999999999999", "abc"):
        refused(stack, "GET", f"{P}/orders/{missing}", 404)
        refused(stack, "POST", f"{P}/orders/{missing}/reverse", 404, json={"reason": "x"})


def test_a_purchase_whose_tokens_are_gone_is_reversed_after_its_redemption(stack: Stack) -> None:
    c = staker(stack)
    api = eth(stack, c)
    ok(api.eth_purchase(amt="2"))
    bought = newest_order(stack, c)
    ok(api.eth_redeem(amt="2"))  # fast: the BETH is burnt already
    redeemed = newest_order(stack, c)
    before = books(stack, c.uid)
    # the user's BETH would go negative (the message may name ETH: the platform's staked principal
    # can be short too when this purchase was the only stake)
    assert refused(stack, "POST", f"{P}/orders/{bought}/reverse", 400, json={"reason": "x"}).startswith(
        "Insufficient")
    assert books(stack, c.uid) == before and stack.call("GET", f"{P}/orders/{bought}")["status"] == "success"
    assert stack.call("POST", f"{P}/orders/{redeemed}/reverse", json={"reason": "undo"})["status"] == "failed"
    assert stack.balances(c.uid)[("6", "BETH")] == Decimal("2")
    assert stack.call("POST", f"{P}/orders/{bought}/reverse", json={"reason": "undo"})["status"] == "failed"
    b = stack.balances(c.uid)
    assert (b[("6", "ETH")], b[("6", "BETH")]) == (Decimal("5"), Decimal("0"))
    stack.audit_ok()


def test_a_standard_redemption_shows_in_the_queue_and_cannot_be_reversed(stack: Stack) -> None:
    c = staker(stack, funds="150")
    ok(eth(stack, c).eth_purchase(amt="120"))
    ok(eth(stack, c).eth_redeem(amt="110"))  # more than the 100 fast allowance: queued whole
    ord_id = newest_order(stack, c)
    q = stack.call("GET", f"{P}/products/ETH/queue")
    assert q["dailyRedemptionCap"] is None and q["capUsedToday"] == "0"
    mine = [i for i in q["queue"] if i["ordId"] == ord_id]
    assert len(mine) == 1
    assert (mine[0]["amt"], mine[0]["unscheduled"], mine[0]["redeemingAmt"], mine[0]["status"]) == (
        "110", "110", "110", "pending")
    assert mine[0]["estCompletedTime"] is not None
    positions = [i["position"] for i in q["queue"]]
    assert positions == list(range(1, len(positions) + 1))
    before = books(stack, c.uid)
    assert before[("6", "BETH:locked")] == Decimal("110")
    message = refused(stack, "POST", f"{P}/orders/{ord_id}/reverse", 403, json={"reason": "x"})
    assert "pending" in message
    assert books(stack, c.uid) == before
    refused(stack, "GET", f"{P}/products/XRP/queue", 404)
