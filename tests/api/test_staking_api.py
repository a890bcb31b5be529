"""ETH and SOL liquid staking through the unchanged clients: python-okx (Finance.EthStaking /
SolStaking) and ccxt.okx implicit methods, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from typing import Any

import ccxt
import httpx
import okx.Finance.EthStaking as OkxEth
import okx.Finance.SolStaking as OkxSol
import okx.Funding as OkxFunding
import pytest

from tests.api.test_clients import ccxt_okx
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)


def eth(stack: Stack, c: Creds) -> OkxEth.EthStakingAPI:
    return OkxEth.EthStakingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def sol(stack: Stack, c: Creds) -> OkxSol.SolStakingAPI:
    return OkxSol.SolStakingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def staker(stack: Stack, *, env: str = "live", funds: dict[str, str] | None = None, kyc: int = 2) -> Creds:
    """A user of the sandbox: created through the admin API, which accepts the staking terms."""
    return stack.new_user(env=env, funds=funds or {"ETH": "10", "SOL": "100"}, kyc=kyc)


def ok(reply: dict[str, Any]) -> list[Any] | dict[str, Any]:
    assert reply["code"] == "0", reply
    data: list[Any] | dict[str, Any] = reply["data"]
    return data


def books(stack: Stack, uid: str) -> dict[tuple[str, str], Decimal]:
    """Every balance of the user, free and locked, by (account type, ccy)."""
    rows = stack.call("GET", f"/admin/users/{uid}/balances")
    out = {}
    for r in rows:
        out[(r["acctType"], r["ccy"])] = Decimal(r["available"])
        out[(r["acctType"], r["ccy"] + ":locked")] = Decimal(r["locked"])
    return out


@pytest.mark.parametrize("env", ["live", "demo"])
def test_python_okx_eth_purchase_balance_fast_redeem_history(stack: Stack, env: str) -> None:
    c = staker(stack, env=env)
    api = eth(stack, c)
    assert ok(api.eth_product_info()) == [{"fastRedemptionDailyLimit": "100"}]
    assert ok(api.eth_balance()) == []  # never held BETH

    assert ok(api.eth_purchase(amt="2.5")) == []
    b = stack.balances(c.uid)
    assert b[("6", "ETH")] == Decimal("7.5") and b[("6", "BETH")] == Decimal("2.5")
    bal = ok(api.eth_balance())
    assert isinstance(bal, list)
    assert bal[0]["ccy"] == "BETH" and bal[0]["amt"] == "2.5"
    assert bal[0]["latestInterestAccrual"] == "0" and bal[0]["totalInterestAccrual"] == "0"
    assert bal[0]["ts"].isdigit()

    assert ok(api.eth_redeem(amt="1")) == []  # fits the allowance: fast, settled at once
    b = stack.balances(c.uid)
    assert b[("6", "ETH")] == Decimal("8.5") and b[("6", "BETH")] == Decimal("1.5")

    rows = ok(api.eth_purchase_redeem_history())
    assert isinstance(rows, list)
    assert [(r["type"], r["amt"], r["status"], r["redeemingAmt"]) for r in rows] == [
        ("redeem", "1", "success", ""), ("purchase", "2.5", "success", "")]
    assert all(r["ordId"].isdigit() and r["completedTime"] == r["requestTime"] for r in rows)
    assert ok(api.eth_purchase_redeem_history(type="purchase"))[0]["amt"] == "2.5"  # type: ignore[index]
    assert ok(api.eth_purchase_redeem_history(status="pending")) == []
    assert len(ok(api.eth_purchase_redeem_history(limit="1"))) == 1
    stack.audit_ok()


def test_python_okx_sol_product_info_is_an_object_with_group_allowance(stack: Stack) -> None:
    c = staker(stack)
    api = sol(stack, c)
    assert ok(api.sol_product_info()) == {"fastRedemptionDailyLimit": "240", "fastRedemptionAvail": "240"}
    assert ok(api.sol_purchase(amt="50")) == []
    assert ok(api.sol_redeem(amt="40")) == []
    assert ok(api.sol_product_info()) == {"fastRedemptionDailyLimit": "240", "fastRedemptionAvail": "200"}
    bal = ok(api.sol_balance())
    assert isinstance(bal, list) and bal[0]["ccy"] == "OKSOL" and bal[0]["amt"] == "10"
    assert stack.balances(c.uid)[("6", "SOL")] == Decimal("90")


def test_ccxt_implicit_methods_cover_eth_and_sol(stack: Stack) -> None:
    c = staker(stack)
    ex = ccxt_okx(stack, c)
    assert ex.privatePostFinanceStakingDefiEthPurchase({"amt": "1.2"})["code"] == "0"
    assert ex.privatePostFinanceStakingDefiSolPurchase({"amt": "3"})["code"] == "0"
    assert ex.privateGetFinanceStakingDefiEthBalance()["data"][0]["amt"] == "1.2"
    assert ex.privateGetFinanceStakingDefiSolBalance()["data"][0]["amt"] == "3"
    info = ex.privateGetFinanceStakingDefiSolProductInfo()
    assert info["data"]["fastRedemptionDailyLimit"] == "240"
    hist = ex.privateGetFinanceStakingDefiEthPurchaseRedeemHistory({"type": "purchase", "limit": "5"})
    assert [r["amt"] for r in hist["data"]] == ["1.2"]
    apy = ex.publicGetFinanceStakingDefiEthApyHistory({"days": "5"})
    assert apy["code"] == "0" and isinstance(apy["data"], list)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.privatePostFinanceStakingDefiEthRedeem({"amt": "5"})  # 51736
    with pytest.raises(ccxt.BadRequest):
        ex.privatePostFinanceStakingDefiSolPurchase({"amt": "0.0000000001"})  # 51000: more than 8 decimals


def test_apy_history_is_public_per_day_with_carry_forward(fresh_stack: Any) -> None:
    stack: Stack = fresh_stack()
    svc = stack.services
    svc.sandbox_clock.freeze()
    today = svc.staking.today()
    svc.staking.publish_rate("ETH", today - dt.timedelta(days=3), Decimal("0.0284"))
    svc.staking.publish_rate("ETH", today - dt.timedelta(days=1), Decimal("0.0269"))
    public = OkxEth.EthStakingAPI(flag="0", domain=stack.base_url, debug=False)
    rows = ok(public.eth_apy_history(days="5"))
    assert isinstance(rows, list)
    # Newest first: today (carried from yesterday), yesterday, two days ago (carried), three days ago;
    # four days ago had no rate yet and is left out.
    assert [r["rate"] for r in rows] == ["0.02690000", "0.02690000", "0.02840000", "0.02840000"]
    starts = [svc.calendar.period_of_day(today - dt.timedelta(days=n)).start for n in range(4)]
    assert [int(r["ts"]) for r in rows] == [int(s.timestamp() * 1000) for s in starts]
    assert ok(public.eth_apy_history(days="1")) == [rows[0]]
    for bad in ("0", "366", "abc", "1.5", "-1"):
        reply = public.eth_apy_history(days=bad)
        assert reply["code"] == "51000", (bad, reply)
    reply = httpx.get(f"{stack.base_url}/api/v5/finance/staking-defi/sol/apy-history").json()
    assert reply["code"] == "50014"
    assert ok(OkxSol.SolStakingAPI(flag="0", domain=stack.base_url, debug=False).sol_apy_history(days="3")) == []


AMOUNTS = [("0", "51000"), ("-1", "51000"), ("1e3", "51000"), ("NaN", "51000"), ("Infinity", "51000"),
           ("0.123456789", "51000"), ("abc", "51000"), ("1000000000001", "51000"), ("", "50014")]


@pytest.mark.parametrize(("amt", "code"), AMOUNTS)
def test_bad_amounts_are_refused_and_change_nothing(stack: Stack, amt: str, code: str) -> None:
    c = staker(stack)
    api = eth(stack, c)
    ok(api.eth_purchase(amt="1"))
    before = books(stack, c.uid)
    for call in (api.eth_purchase, api.eth_redeem):
        reply = call(amt=amt)
        assert reply["code"] == code, (amt, reply)
        assert "amt" in reply["msg"]
    assert books(stack, c.uid) == before
    assert len(ok(api.eth_purchase_redeem_history())) == 1


def test_bad_query_parameters(stack: Stack) -> None:
    c = staker(stack)
    api = eth(stack, c)
    for kw in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"after": "yesterday"}, {"before": "-5"},
               {"type": "stake"}, {"status": "done"}):
        reply = api.eth_purchase_redeem_history(**kw)
        assert reply["code"] == "51000", (kw, reply)


def test_redeem_needs_free_tokens_in_the_funding_account(stack: Stack) -> None:
    c = staker(stack)
    api = eth(stack, c)
    ok(api.eth_purchase(amt="2"))
    f = OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)
    ok(f.funds_transfer("BETH", "1.5", "6", "18"))  # 1.5 BETH now in the trading account
    before = books(stack, c.uid)
    reply = api.eth_redeem(amt="1")
    assert reply["code"] == "51736" and reply["msg"] == "Insufficient BETH balance"
    assert books(stack, c.uid) == before
    ok(api.eth_redeem(amt="0.5"))  # what is in funding can be redeemed
    assert stack.balances(c.uid)[("18", "BETH")] == Decimal("1.5")


def test_purchase_preconditions_each_have_their_code(fresh_stack: Any) -> None:
    stack: Stack = fresh_stack()
    svc = stack.services
    no_kyc = staker(stack, kyc=0)
    assert eth(stack, no_kyc).eth_purchase(amt="1")["code"] == "51732"
    user = stack.call("POST", "/admin/users", json={"kycLevel": 2, "acceptTerms": []})
    no_terms = stack.add_key(user["uid"], env="live", funds={"ETH": "2"})
    reply = eth(stack, no_terms).eth_purchase(amt="1")
    assert reply["code"] == "50030" and "terms" in reply["msg"]
    stack.call("POST", f"/admin/users/{no_terms.uid}/terms", json={"product": "ETH"})
    assert eth(stack, no_terms).eth_purchase(amt="1")["code"] == "0"
    frozen = staker(stack)
    stack.call("POST", f"/admin/users/{frozen.uid}/freeze", json={"functions": ["staking"]})
    assert eth(stack, frozen).eth_purchase(amt="1")["code"] == "51738"
    assert eth(stack, frozen).eth_redeem(amt="1")["code"] == "51738"
    stack.call("POST", f"/admin/users/{frozen.uid}/unfreeze", json={"functions": ["staking"]})
    assert eth(stack, frozen).eth_purchase(amt="1")["code"] == "0"
    stack.call("POST", f"/admin/users/{frozen.uid}/freeze", json={"functions": []})  # the whole user
    assert eth(stack, frozen).eth_redeem(amt="0.5")["code"] == "51738"
    stack.call("POST", f"/admin/users/{frozen.uid}/unfreeze", json={"functions": []})

    c = staker(stack)
    api = eth(stack, c)
    assert api.eth_purchase(amt="0.009")["code"] == "51727"
    assert api.eth_purchase(amt="0.009")["msg"] == "The minimum subscription amount is 0.01 ETH"
    assert api.eth_purchase(amt="11")["code"] == "51736"
    svc.staking.update_product("ETH", {"purchase_enabled": False})
    assert api.eth_purchase(amt="1")["code"] == "51731"
    svc.staking.update_product("ETH", {"purchase_enabled": True, "user_quota": "3"})
    ok(api.eth_purchase(amt="2"))
    assert api.eth_purchase(amt="1.5")["code"] == "51728"
    ok(api.eth_purchase(amt="1"))
    svc.staking.update_product("ETH", {"user_quota": None, "total_quota": "5"})  # 3 + 1 + 1 staked
    assert api.eth_purchase(amt="0.5")["code"] == "51730"
    svc.staking.update_product("ETH", {"total_quota": None, "sub_accounts_allowed": False})
    sub = stack.call("POST", f"/admin/users/{c.uid}/sub-accounts", json={"subAcct": "stakesub1"})
    sub_key = stack.add_key(sub["uid"], env="live", funds={"ETH": "1"})
    assert eth(stack, sub_key).eth_purchase(amt="0.5")["code"] == "51735"
    assert stack.balances(sub["uid"])[("6", "ETH")] == Decimal("1")
    stack.audit_ok()


def test_fast_allowance_is_shared_by_master_and_sub_accounts(fresh_stack: Any) -> None:
    stack: Stack = fresh_stack()
    svc = stack.services
    svc.sandbox_clock.freeze()
    master = staker(stack, funds={"ETH": "150"})
    sub = stack.call("POST", f"/admin/users/{master.uid}/sub-accounts", json={"subAcct": "fastsub1"})
    sub_key = stack.add_key(sub["uid"], env="live", funds={"ETH": "100"})
    m, s = eth(stack, master), eth(stack, sub_key)
    ok(m.eth_purchase(amt="150"))
    ok(s.eth_purchase(amt="100"))
    ok(m.eth_redeem(amt="60"))  # fast: 40 of the group's 100 left
    ok(s.eth_redeem(amt="50"))  # 50 > 40: queued whole, never split
    ok(s.eth_redeem(amt="40"))  # exactly what is left: fast
    ok(m.eth_redeem(amt="0.00000001"))  # nothing left: queued
    hist_m = ok(m.eth_purchase_redeem_history(type="redeem"))
    hist_s = ok(s.eth_purchase_redeem_history(type="redeem"))
    assert [(r["amt"], r["status"]) for r in hist_m] == [("0.00000001", "pending"), ("60", "success")]
    assert [(r["amt"], r["status"]) for r in hist_s] == [("40", "success"), ("50", "pending")]
    assert ok(sol(stack, sub_key).sol_product_info())["fastRedemptionAvail"] == "240"  # type: ignore[call-overload]
    # A new T-day restores the allowance.
    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    ok(m.eth_redeem(amt="89"))
    assert ok(m.eth_purchase_redeem_history(limit="1"))[0]["status"] == "success"  # type: ignore[index]
    stack.audit_ok()


def test_queue_longer_than_several_days_of_cap_is_served_fifo(fresh_stack: Any) -> None:
    stack: Stack = fresh_stack()
    svc = stack.services
    svc.sandbox_clock.freeze()
    svc.staking.update_product("ETH", {"fast_redemption_enabled": False, "daily_redemption_cap": "3",
                                       "unbonding_days": 2})
    a, b = staker(stack), staker(stack)
    ea, eb = eth(stack, a), eth(stack, b)
    ok(ea.eth_purchase(amt="5"))
    ok(eb.eth_purchase(amt="5"))
    ok(ea.eth_redeem(amt="4"))  # head: 3 on day 0, 1 on day 1
    ok(eb.eth_redeem(amt="4"))  # 2 on day 1, 2 on day 2
    ok(ea.eth_redeem(amt="1"))  # 1 on day 2
    today = svc.staking.today()

    def end(days: int) -> int:
        return int(svc.staking.day_end(today + dt.timedelta(days=days)).timestamp() * 1000)

    rows = ok(ea.eth_purchase_redeem_history(type="redeem"))
    # Estimates at request time: last part scheduled on day 1 / day 2, delivered 2 days later.
    assert [int(r["estCompletedTime"]) for r in rows] == [end(4), end(3)]  # type: ignore[index]
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # run of day 0: 3 of A's first scheduled
    queue = svc.staking.queue("ETH")
    assert [(q.order.uid, q.unscheduled) for q in queue] == [(a.uid, Decimal(1)), (b.uid, Decimal(4)),
                                                              (a.uid, Decimal(1))]
    stack.call("POST", "/admin/clock/advance", json={"days": 2})  # runs of day 1 and 2
    assert svc.staking.queue("ETH")[0].unscheduled == 0  # A's first request fully scheduled
    assert stack.balances(a.uid)[("6", "ETH")] == Decimal(8)  # day 0's 3 delivered by the run of day 2
    rows = ok(ea.eth_purchase_redeem_history(type="redeem"))
    assert [(r["amt"], r["status"], r["redeemingAmt"]) for r in rows] == [("1", "pending", "1"),
                                                                           ("4", "pending", "1")]
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # run of day 3: A's first complete
    rows = ok(ea.eth_purchase_redeem_history(type="redeem"))
    assert [(r["status"], r["redeemingAmt"], r["completedTime"]) for r in rows] == [
        ("pending", "1", ""), ("success", "", str(end(3)))]
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # run of day 4: everything delivered
    rows = ok(ea.eth_purchase_redeem_history(type="redeem")) + ok(eb.eth_purchase_redeem_history(type="redeem"))
    assert [(r["amt"], r["status"], r["completedTime"]) for r in rows] == [
        ("1", "success", str(end(4))), ("4", "success", str(end(3))), ("4", "success", str(end(4)))]
    assert stack.balances(a.uid)[("6", "ETH")] == Decimal(10)
    assert stack.balances(b.uid)[("6", "ETH")] == Decimal(9)
    assert svc.staking.queue("ETH") == []
    stack.audit_ok()


def test_cancel_before_and_after_scheduling(fresh_stack: Any) -> None:
    stack: Stack = fresh_stack()
    svc = stack.services
    svc.sandbox_clock.freeze()
    svc.staking.update_product("ETH", {"fast_redemption_daily_limit": "0", "daily_redemption_cap": "1"})
    c, other = staker(stack), staker(stack)
    api = eth(stack, c)
    ok(api.eth_purchase(amt="5"))
    ok(api.eth_redeem(amt="2"))
    ok(api.eth_redeem(amt="1"))
    first, second = [r["ordId"] for r in ok(api.eth_purchase_redeem_history(type="redeem"))][::-1]  # type: ignore[index]
    purchase_id = ok(api.eth_purchase_redeem_history(type="purchase"))[0]["ordId"]  # type: ignore[index]
    assert stack.balances(c.uid)[("6", "BETH")] == Decimal(2)  # 3 locked

    assert eth(stack, other).eth_cancel_redeem(ordId=second)["code"] == "51603"  # someone else's
    assert api.eth_cancel_redeem(ordId="999999999")["code"] == "51603"
    assert api.eth_cancel_redeem(ordId="abc")["code"] == "51603"
    assert api.eth_cancel_redeem(ordId="")["code"] == "50014"
    assert api.eth_cancel_redeem(ordId=purchase_id)["code"] == "51721"
    assert ok(api.eth_cancel_redeem(ordId=second)) == [{"ordId": second}]
    assert stack.balances(c.uid)[("6", "BETH")] == Decimal(3)
    assert api.eth_cancel_redeem(ordId=second)["code"] == "51721"  # already cancelled

    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # 1 of the first request scheduled
    before = books(stack, c.uid)
    reply = api.eth_cancel_redeem(ordId=first)
    assert reply["code"] == "51721" and "scheduled" in reply["msg"]
    assert books(stack, c.uid) == before
    # The SOL product has the same endpoint (ccxt calls it).
    ex = ccxt_okx(stack, c)
    svc.staking.update_product("SOL", {"fast_redemption_enabled": False})
    ex.privatePostFinanceStakingDefiSolPurchase({"amt": "10"})
    ex.privatePostFinanceStakingDefiSolRedeem({"amt": "4"})
    sol_id = ex.privateGetFinanceStakingDefiSolPurchaseRedeemHistory({"type": "redeem"})["data"][0]["ordId"]
    assert ex.privatePostFinanceStakingDefiSolCancelRedeem({"ordId": sol_id})["data"] == [{"ordId": sol_id}]
    assert sol(stack, c).sol_purchase_redeem_history(status="cancelled")["data"][0]["ordId"] == sol_id
    svc.staking.update_product("ETH", {"redeem_cancellable": False})
    ok(api.eth_redeem(amt="1"))
    last = ok(api.eth_purchase_redeem_history(limit="1"))[0]["ordId"]  # type: ignore[index]
    assert api.eth_cancel_redeem(ordId=last)["code"] == "51725"
    svc.staking.update_product("ETH", {"redeem_cancellable": True, "fast_redemption_daily_limit": "100",
                                       "daily_redemption_cap": None})
    ok(api.eth_redeem(amt="0.1"))  # fast: final at once
    fast_id = ok(api.eth_purchase_redeem_history(limit="1"))[0]["ordId"]  # type: ignore[index]
    assert api.eth_cancel_redeem(ordId=fast_id)["code"] == "51722"
    stack.audit_ok()


def test_history_paging_by_request_time(fresh_stack: Any) -> None:
    stack: Stack = fresh_stack()
    svc = stack.services
    svc.sandbox_clock.freeze()
    c = staker(stack)
    api = eth(stack, c)
    times = []
    for n in range(5):
        ok(api.eth_purchase(amt=f"0.0{n + 1}"))
        times.append(ok(api.eth_purchase_redeem_history(limit="1"))[0]["requestTime"])  # type: ignore[index]
        stack.call("POST", "/admin/clock/advance", json={"seconds": 60})
    all_rows = ok(api.eth_purchase_redeem_history())
    assert [r["amt"] for r in all_rows] == ["0.05", "0.04", "0.03", "0.02", "0.01"]
    older = ok(api.eth_purchase_redeem_history(after=times[2]))
    assert [r["amt"] for r in older] == ["0.02", "0.01"]
    newer = ok(api.eth_purchase_redeem_history(before=times[2], limit="1"))
    assert [r["amt"] for r in newer] == ["0.05"]
