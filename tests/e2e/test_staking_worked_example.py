"""The worked example of ``docs/staking.md``, executed end to end with the unchanged python-okx
client, on SQLite and PostgreSQL. Every figure the document shows is asserted here, so the
document cannot drift from the code.

Also: a month of rewards matches the formula of the rules to the last unit, computed here
independently (Decimal, ROUND_DOWN), not with stakehouse's own rules.
"""

from __future__ import annotations

import datetime as dt
import decimal
import warnings
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import okx.Finance.EthStaking as OkxEthStaking
import okx.Funding as OkxFunding
from sqlalchemy import select

from stakehouse.db.tables import ledger_accounts
from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

IST = ZoneInfo("Europe/Istanbul")
UNIT = Decimal("0.00000001")  # ETH/BETH precision: 8 decimals


# -- helpers ----------------------------------------------------------------------------


def ms(day: dt.date, hour: int = 0, minute: int = 0) -> str:
    """Unix ms of ``hour:minute`` on ``day`` in Istanbul (the business time zone)."""
    return str(int(dt.datetime.combine(day, dt.time(hour, minute), IST).timestamp()) * 1000)


#: Our own arithmetic context: stakehouse installs a global one on import, the check must not use it.
EXACT = decimal.Context(prec=60, rounding=ROUND_DOWN, traps=[decimal.Inexact, decimal.InvalidOperation])
WIDE = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)


def down(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_DOWN, context=WIDE)


def plain(value: Decimal) -> str:
    """The wire text of an amount: no exponent, no trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def eth_api(stack: Stack, c: Creds) -> OkxEthStaking.EthStakingAPI:
    return OkxEthStaking.EthStakingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url,
                                       debug=False)


def funding_api(stack: Stack, c: Creds) -> OkxFunding.FundingAPI:
    return OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url,
                                 debug=False)


def ok(reply: dict[str, Any]) -> Any:
    assert reply["code"] == "0", reply
    return reply["data"]


def staker(stack: Stack, eth: str) -> Creds:
    """A demo user with KYC level 2 who accepted the ETH terms, a trade key, ``eth`` ETH in funding."""
    user = stack.call("POST", "/admin/users", json={"env": "demo", "kycLevel": 2, "acceptTerms": ["ETH"]})
    return stack.add_key(user["uid"], env="demo", funds={"ETH": eth}, perms=("read_only", "trade"))


def start_day(stack: Stack, hour: int = 12) -> dt.date:
    """Freeze business time and move it to ``hour``:00 (Istanbul) of the next T-day: day D."""
    frozen = stack.services.sandbox_clock.freeze()  # type: ignore[union-attr]
    day = frozen.astimezone(IST).date() + dt.timedelta(days=1)
    target = dt.datetime.combine(day, dt.time(hour), IST)
    stack.call("POST", "/admin/clock/advance", json={"to": target.isoformat()})
    return day


def advance(stack: Stack, **by: int) -> list[dict[str, str]]:
    jobs: list[dict[str, str]] = stack.call("POST", "/admin/clock/advance", json=by)["jobsRun"]
    return jobs


def system_balance(stack: Stack, name: str, ccy: str) -> Decimal:
    c = ledger_accounts.c
    with stack.services.db.read() as conn:
        row = conn.execute(select(c.available, c.locked).where(c.owner == f"s:{name}", c.ccy == ccy)).first()
    return Decimal(0) if row is None else Decimal(row.available) + Decimal(row.locked)


# Operator actions, through the admin HTTP API (docs/admin.md).


def publish_rate(stack: Stack, day: dt.date, rate: str) -> None:
    stack.call("PUT", f"/admin/staking/products/ETH/rates/{day.isoformat()}", json={"rate": rate})


def set_eth(stack: Stack, **settings: str) -> dict[str, Any]:
    product: dict[str, Any] = stack.call("PATCH", "/admin/staking/products/ETH", json=settings)
    return product


def reward_runs(stack: Stack) -> dict[str, dict[str, Any]]:
    """The ETH reward runs by T-day (ISO date)."""
    return {r["day"]: r for r in stack.call("GET", "/admin/staking/products/ETH/reward-runs", params={"limit": 100})}


# -- the worked example ------------------------------------------------------------------


def test_worked_example(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(key_expiry_enabled=False)
    d = start_day(stack)  # business time: D 12:00 Istanbul

    def day(n: int) -> dt.date:
        return d + dt.timedelta(days=n)

    # Step 0 (operator, on D): rates, fee, fast redemption off, daily cap 1.5 ETH.
    publish_rate(stack, d, "0.0284")
    publish_rate(stack, day(3), "0.0269")
    cfg = set_eth(stack, service_fee_rate="0.1", fast_redemption_daily_limit="0", daily_redemption_cap="1.5")
    assert (cfg["unbonding_days"], cfg["precision"], cfg["min_purchase"]) == (5, 8, "0.01")

    alice = staker(stack, "10")
    eth = eth_api(stack, alice)
    funding = funding_api(stack, alice)
    assert ok(eth.eth_product_info()) == [{"fastRedemptionDailyLimit": "0"}]

    # Step 1: D 12:00, purchase 2.5 ETH.
    assert ok(eth.eth_purchase(amt="2.5")) == []
    assert stack.balances(alice.uid) == {("6", "ETH"): Decimal("7.5"), ("6", "BETH"): Decimal("2.5")}
    assert ok(eth.eth_balance()) == [{"ccy": "BETH", "amt": "2.5", "latestInterestAccrual": "0",
                                      "totalInterestAccrual": "0", "ts": ms(d, 12)}]
    purchase = ok(eth.eth_purchase_redeem_history())
    assert len(purchase) == 1
    purchase_id = purchase[0]["ordId"]
    assert purchase_id.isdigit()
    purchase_row = {"ordId": purchase_id, "type": "purchase", "amt": "2.5", "redeemingAmt": "",
                    "status": "success", "requestTime": ms(d, 12), "completedTime": ms(d, 12),
                    "estCompletedTime": ""}
    assert purchase == [purchase_row]

    # Step 2: three days of rewards. D earns nothing; D+1 and D+2 earn on 2.5; D+3 earns on
    # 2.5 + the reward of D+1 (paid at 00:00 of D+2), at the new rate 0.0269.
    expected = [  # (T-day, balance after the run at 00:00 of the next day, eligible, gross, net, fee)
        (0, "2.5", "0", "0", "0", "0"),
        (1, "2.50017506", "2.5", "0.00019452", "0.00017506", "0.00001946"),
        (2, "2.50035012", "2.5", "0.00019452", "0.00017506", "0.00001946"),
        (3, "2.50051594", "2.50017506", "0.00018425", "0.00016582", "0.00001843"),
    ]
    total = Decimal(0)
    for n, amt, _eligible, _gross, net, _fee in expected:
        jobs = advance(stack, days=1)  # to D+n+1 12:00; the runs of D+n happen at 00:00 of D+n+1
        assert [(j["job"], j["period"]) for j in jobs if j["job"].startswith("staking")] == [
            ("staking_rewards:ETH", day(n).isoformat()), ("staking_rewards:SOL", day(n).isoformat()),
            ("staking_settlement:ETH", day(n).isoformat()), ("staking_settlement:SOL", day(n).isoformat())]
        total += Decimal(net)
        latest = net if n > 0 else "0"
        assert ok(eth.eth_balance()) == [{"ccy": "BETH", "amt": amt, "latestInterestAccrual": latest,
                                          "totalInterestAccrual": plain(total), "ts": ms(day(n + 1), 12)}]
    # The arithmetic the document shows for D+1 and D+3.
    assert str(WIDE.divide(Decimal("2.5") * Decimal("0.0284"), 365)).startswith("0.000194520547")
    assert Decimal("0.00019452") * Decimal("0.9") == Decimal("0.000175068")
    assert str(WIDE.divide(Decimal("2.50017506") * Decimal("0.0269"), 365)).startswith("0.000184259477")
    assert Decimal("0.00018425") * Decimal("0.9") == Decimal("0.000165825")
    runs = reward_runs(stack)
    for n, _amt, eligible, gross, net, fee in expected:
        run = runs[day(n).isoformat()]
        assert run["rate"] == ("0.02840000" if n < 3 else "0.02690000")
        assert (run["holders"], run["eligible"], run["gross"], run["net"], run["fee"]) == (
            0 if n == 0 else 1, eligible, gross, net, fee)
    assert plain(total) == "0.00051594"
    assert system_balance(stack, "fees", "ETH") == Decimal("0.00005735")
    assert system_balance(stack, "validator_rewards", "ETH") == Decimal("-0.00057329")
    assert system_balance(stack, "staked_principal", "ETH") == Decimal("2.50051594")

    # apy-history on D+4: one row per T-day, newest first, the D rate carried forward to D+1, D+2.
    assert ok(eth.eth_apy_history(days="5")) == [
        {"rate": "0.02690000", "ts": ms(day(4))}, {"rate": "0.02690000", "ts": ms(day(3))},
        {"rate": "0.02840000", "ts": ms(day(2))}, {"rate": "0.02840000", "ts": ms(day(1))},
        {"rate": "0.02840000", "ts": ms(d)}]

    # Step 3: D+4 12:00, a request for 1 BETH (standard: the fast allowance is 0), then cancelled.
    assert ok(eth.eth_redeem(amt="1")) == []
    first = ok(eth.eth_purchase_redeem_history(type="redeem"))
    assert len(first) == 1
    cancelled_id = first[0]["ordId"]
    assert first == [{"ordId": cancelled_id, "type": "redeem", "amt": "1", "redeemingAmt": "1", "status": "pending",
                      "requestTime": ms(day(4), 12), "completedTime": "", "estCompletedTime": ms(day(10))}]
    assert ok(funding.get_balances("BETH")) == [
        {"ccy": "BETH", "bal": "2.50051594", "frozenBal": "1", "availBal": "1.50051594"}]
    assert ok(eth.eth_cancel_redeem(ordId=cancelled_id)) == [{"ordId": cancelled_id}]
    assert ok(funding.get_balances("BETH")) == [
        {"ccy": "BETH", "bal": "2.50051594", "frozenBal": "0", "availBal": "2.50051594"}]
    assert eth.eth_cancel_redeem(ordId=cancelled_id)["code"] == "51721"  # already cancelled

    # Step 4: D+4 13:00, redeem everything: 2.50051594 BETH, queued (cap 1.5 a day: two days).
    advance(stack, seconds=3600)
    assert ok(eth.eth_redeem(amt="2.50051594")) == []
    history = ok(eth.eth_purchase_redeem_history())
    redeem_id = history[0]["ordId"]
    assert int(purchase_id) < int(cancelled_id) < int(redeem_id)
    cancelled_row = {"ordId": cancelled_id, "type": "redeem", "amt": "1", "redeemingAmt": "", "status": "cancelled",
                     "requestTime": ms(day(4), 12), "completedTime": "", "estCompletedTime": ""}

    def redeem_row(status: str, redeeming: str, completed: str) -> dict[str, str]:
        return {"ordId": redeem_id, "type": "redeem", "amt": "2.50051594", "redeemingAmt": redeeming,
                "status": status, "requestTime": ms(day(4), 13), "completedTime": completed,
                "estCompletedTime": ms(day(11))}

    assert history == [redeem_row("pending", "2.50051594", ""), cancelled_row, purchase_row]
    assert ok(eth.eth_balance())[0]["amt"] == "2.50051594"
    assert ok(funding.get_balances("BETH")) == [
        {"ccy": "BETH", "bal": "2.50051594", "frozenBal": "2.50051594", "availBal": "0"}]

    # Step 5: the run at 00:00 of D+5 pays nothing for D+4 (nothing free all day) and schedules
    # 1.5 of the request; it can no longer be cancelled.
    advance(stack, days=1)  # D+5 13:00
    run = reward_runs(stack)[day(4).isoformat()]
    assert (run["holders"], run["eligible"], run["net"]) == (0, "0", "0")
    queue = stack.call("GET", "/admin/staking/products/ETH/queue")
    assert (queue["previousDay"], queue["capUsedPreviousDay"], queue["unscheduledTotal"]) == (
        day(4).isoformat(), "1.5", "1.00051594")
    assert [(q["ordId"], q["scheduledAmt"], q["unscheduled"]) for q in queue["queue"]] == [
        (redeem_id, "1.5", "1.00051594")]
    assert ok(eth.eth_purchase_redeem_history(type="redeem", status="pending")) == [
        redeem_row("pending", "2.50051594", "")]
    refused = eth.eth_cancel_redeem(ordId=redeem_id)
    assert (refused["code"], refused["msg"]) == (
        "51721", "Cancel redeem error: part of the redemption is already scheduled"), refused
    assert ok(eth.eth_balance()) == [{"ccy": "BETH", "amt": "2.50051594", "latestInterestAccrual": "0.00016582",
                                      "totalInterestAccrual": "0.00051594", "ts": ms(day(5), 13)}]

    # Step 6: the run at 00:00 of D+6 schedules the remaining 1.00051594.
    advance(stack, days=1)  # D+6 13:00
    queue = stack.call("GET", "/admin/staking/products/ETH/queue")
    assert (queue["capUsedPreviousDay"], queue["unscheduledTotal"]) == ("1.00051594", "0")
    assert [(q["ordId"], q["scheduledAmt"], q["unscheduled"]) for q in queue["queue"]] == [
        (redeem_id, "2.50051594", "0")]
    assert ok(eth.eth_purchase_redeem_history(type="redeem", limit="1")) == [redeem_row("pending", "2.50051594", "")]

    # Step 7: the run at 00:00 of D+10 delivers the first 1.5 (scheduled at the end of D+4, + 5 days).
    advance(stack, days=3)  # D+9 13:00: nothing delivered yet
    assert stack.balances(alice.uid)[("6", "ETH")] == Decimal("7.5")
    advance(stack, days=1)  # D+10 13:00
    assert ok(eth.eth_purchase_redeem_history(type="redeem", limit="1")) == [redeem_row("pending", "1.00051594", "")]
    assert stack.balances(alice.uid) == {("6", "ETH"): Decimal("9"), ("6", "BETH"): Decimal("0")}  # available
    assert ok(funding.get_balances("BETH")) == [
        {"ccy": "BETH", "bal": "1.00051594", "frozenBal": "1.00051594", "availBal": "0"}]
    assert ok(eth.eth_balance())[0]["amt"] == "1.00051594"

    # Step 8: the run at 00:00 of D+11 delivers the rest; the request is complete.
    advance(stack, days=1)  # D+11 13:00
    assert ok(eth.eth_purchase_redeem_history()) == [
        redeem_row("success", "", ms(day(11))), cancelled_row, purchase_row]
    assert eth.eth_cancel_redeem(ordId=redeem_id)["code"] == "51722"
    assert ok(eth.eth_balance()) == [{"ccy": "BETH", "amt": "0", "latestInterestAccrual": "0.00016582",
                                      "totalInterestAccrual": "0.00051594", "ts": ms(day(11), 13)}]
    assert stack.balances(alice.uid) == {("6", "ETH"): Decimal("10.00051594"), ("6", "BETH"): Decimal("0")}
    assert system_balance(stack, "staked_principal", "ETH") == Decimal("0")
    assert system_balance(stack, "fees", "ETH") == Decimal("0.00005735")
    assert system_balance(stack, "validator_rewards", "ETH") == Decimal("-0.00057329")
    stack.audit_ok()


# -- a month of rewards ------------------------------------------------------------------


def test_a_month_of_rewards_matches_the_formula_to_the_last_unit(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(key_expiry_enabled=False)
    d = start_day(stack, hour=15)
    rates = {0: Decimal("0.0284"), 9: Decimal("0.0311"), 20: Decimal("0.0257")}  # day offset -> rate
    for offset, rate in rates.items():
        publish_rate(stack, d + dt.timedelta(days=offset), str(rate))
    fee_rate = Decimal("0.07")
    set_eth(stack, service_fee_rate=str(fee_rate))  # a JSON string: the admin API refuses floats
    bob = staker(stack, "40")
    eth = eth_api(stack, bob)
    staked = Decimal("31.87654321")
    assert ok(eth.eth_purchase(amt=str(staked))) == []

    advance(stack, days=30)  # one call: the runs of D .. D+29 happen, in order

    # Independently: day k's rate is the latest published on or before k; eligible(k) is the
    # stake (from D+1) plus every reward paid before day k started: the reward of day j is paid
    # at 00:00 of j+1, a posting of day j+1, so it first counts on day j+2.
    nets: list[Decimal] = []
    for k in range(30):
        rate = rates[max(o for o in rates if o <= k)]
        eligible = Decimal(0) if k == 0 else EXACT.add(staked, sum(nets[: max(k - 1, 0)], Decimal(0)))
        gross = down(WIDE.divide(EXACT.multiply(eligible, rate), 365))  # 60 digits: the cut is at the 8th decimal
        net = down(EXACT.multiply(gross, EXACT.subtract(1, fee_rate)))
        nets.append(net)
    total = sum(nets, Decimal(0))
    assert nets[0] == 0 and all(n > 0 for n in nets[1:])

    got = ok(eth.eth_balance())
    assert got[0]["totalInterestAccrual"] == plain(total)
    assert got[0]["latestInterestAccrual"] == plain(nets[29])
    assert Decimal(got[0]["amt"]) == staked + total
    paid = stack.call("GET", f"/admin/staking/users/{bob.uid}/rewards", params={"product": "ETH"})
    assert {r["day"]: Decimal(r["net"]) for r in paid} == {
        (d + dt.timedelta(days=k)).isoformat(): nets[k] for k in range(1, 30)}
    apy = ok(eth.eth_apy_history(days="31"))
    assert [Decimal(r["rate"]) for r in reversed(apy)] == [rates[max(o for o in rates if o <= k)] for k in range(31)]
    stack.audit_ok()
