"""The worked example of ``docs/gemini.md``, executed end to end with the unchanged ccxt ``gemini``
class (and python-okx for the OKX side of the same funding balance), on SQLite and PostgreSQL.
Every figure the document shows is asserted here, so the document cannot drift from the code.

The interest is checked against the formula computed here, independently, with exact fractions
(``floor(balance * bps / 10000 / 365)`` at 18 decimals, compounding into the balance), not with
stakehouse's own rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import warnings
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import ccxt
import okx.Finance.EthStaking as OkxEthStaking
import okx.Funding as OkxFunding

from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)

PROVIDER = "62b21e17-2534-4b9f-afcf-b7edb609dd8d"
UTC = dt.UTC


def floor18(x: Fraction) -> Fraction:
    return Fraction(math.floor(x * 10**18), 10**18)


def interest(balance: Fraction, bps: int) -> Fraction:
    return floor18(balance * Fraction(bps, 10_000) / 365)


def dec(x: Fraction) -> Decimal:
    """Exact for our values (denominators divide 10^18)."""
    return Decimal(x.numerator) / Decimal(x.denominator)


def gemini(stack: Stack, api_key: str, secret: str) -> ccxt.gemini:
    ex = ccxt.gemini({"apiKey": api_key, "secret": secret})
    ex.urls["api"] = {"public": stack.base_url, "private": stack.base_url, "web": stack.base_url,
                      "webExchange": stack.base_url}
    return ex


def raw(ex: ccxt.gemini) -> Any:
    """The last reply as sent: numbers parsed as Decimal from their literal text (ccxt's own parse
    goes through float)."""
    return json.loads(ex.last_http_response, parse_float=Decimal, parse_int=Decimal)


def iso_ms(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def advance_to(stack: Stack, moment: dt.datetime) -> list[dict[str, str]]:
    jobs: list[dict[str, str]] = stack.call("POST", "/admin/clock/advance", json={"to": moment.isoformat()})["jobsRun"]
    return jobs


def test_worked_example(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    # Business time frozen at 12:00 UTC of the next day: day D.
    frozen = stack.services.sandbox_clock.freeze()  # type: ignore[union-attr]
    d = frozen.astimezone(UTC).date() + dt.timedelta(days=1)

    def at(days: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(d + dt.timedelta(days=days), dt.time(hour), UTC)

    advance_to(stack, at(0, 12))

    # -- the operator: a provider, ETH offered with it at 540 bps, a USD price ---------------
    stack.call("POST", "/admin/providers", json={"name": "Example Validators", "providerId": PROVIDER})
    stack.call("PUT", f"/admin/providers/{PROVIDER}/products/ETH", json={"deposit_usd_limit": "500000"})
    published = stack.call("PUT", f"/admin/providers/{PROVIDER}/products/ETH/rates/{d.isoformat()}",
                           json={"rate": "540"})
    assert (published["ratePct"], published["apyPct"]) == ("5.4", "5.55")
    stack.call("PUT", "/admin/markets/ETH-USDT", json={"walk": False})  # ETH's USD price is its index: held still
    stack.call("PUT", "/admin/prices/ETH", json={"price": "3000"})

    # -- the user: 10 ETH in funding, an OKX key and a Gemini account key ---------------------
    user = stack.call("POST", "/admin/users", json={"env": "live", "kycLevel": 2, "acceptTerms": ["ETH"]})
    okx_creds: Creds = stack.add_key(user["uid"], env="live", funds={"ETH": "10"}, perms=("read_only", "trade"))
    key = stack.call("POST", f"/admin/users/{user['uid']}/gemini-keys", json={"roles": ["Trader", "FundManager"]})
    assert key["apiKey"].startswith("account-") and key["scope"] == "account"
    ex = gemini(stack, key["apiKey"], key["secret"])
    funding = OkxFunding.FundingAPI(okx_creds.api_key, okx_creds.secret, okx_creds.passphrase, False, "0",
                                    domain=stack.base_url, debug=False)
    eth_staking = OkxEthStaking.EthStakingAPI(okx_creds.api_key, okx_creds.secret, okx_creds.passphrase, False, "0",
                                              domain=stack.base_url, debug=False)

    def funding_eth() -> Decimal:
        reply = funding.get_balances(ccy="ETH")
        assert reply["code"] == "0", reply
        return Decimal(reply["data"][0]["availBal"])

    # 1. Rates (public).
    ex.publicGetV1StakingRates()
    assert raw(ex) == {PROVIDER: {"ETH": {"providerId": PROVIDER, "rate": Decimal(540), "apyPct": Decimal("5.55"),
                                          "ratePct": Decimal("5.4"), "depositUsdLimit": Decimal(500000)}}}

    # 2. Stake 3 ETH through Gemini, then stake 1 ETH through OKX: one funding balance.
    staked = ex.privatePostV1StakingStake({"providerId": PROVIDER, "currency": "ETH", "amount": "3"})
    body = raw(ex)
    assert set(body) == {"transactionId", "providerId", "currency", "amount", "accrualTotal", "rates"}
    assert (body["providerId"], body["currency"], body["amount"], body["accrualTotal"], body["rates"]) == (
        PROVIDER, "ETH", Decimal(3), Decimal(0), {"rate": Decimal(540)})
    assert len(staked["transactionId"]) == 8 and staked["transactionId"].isalnum()
    assert funding_eth() == Decimal(7)
    purchase = eth_staking.eth_purchase(amt="1")
    assert purchase["code"] == "0", purchase
    assert funding_eth() == Decimal(6)

    # 3. Day D ends at 20:00 UTC: nothing accrues (the day's minimum balance was 0). Then three days.
    advance_to(stack, at(0, 20))
    runs = stack.call("GET", "/admin/providers/accrual-runs")
    assert [(r["day"], r["stakers"], r["total"]) for r in runs] == [(d.isoformat(), 0, "0")]
    advance_to(stack, at(3, 20))
    expected: list[Fraction] = []
    balance = Fraction(3)
    for _ in range(3):
        expected.append(interest(balance, 540))
        balance += expected[-1]
    assert [dec(x) for x in expected] == [Decimal("0.000443835616438356"), Decimal("0.000443901279789829"),
                                          Decimal("0.00044396695285588")]
    assert dec(balance) == Decimal("3.001331703849084065")

    ex.privatePostV1BalancesStaking()
    assert raw(ex) == [{"type": "Staking", "currency": "ETH", "balance": dec(balance), "available": Decimal(0),
                        "availableForWithdrawal": dec(balance),
                        "balanceByProvider": {PROVIDER: {"balance": dec(balance)}}}]

    # 4. Unstake 1 ETH the next morning: paid at once (the product's unstake mode is instant).
    advance_to(stack, at(4, 10))
    ex.privatePostV1StakingUnstake({"providerId": PROVIDER, "currency": "ETH", "amount": "1"})
    body = raw(ex)
    assert (body["amount"], body["amountPaidSoFar"], body["amountRemaining"], body["currency"]) == (
        Decimal(1), Decimal(1), Decimal(0), "ETH")
    assert body["requestInitiated"] == iso_ms(at(4, 10))
    assert funding_eth() == Decimal(7)
    balance -= 1

    # 5. The operator raises the rate to 600 bps from day D+4; that day's accrual uses it.
    stack.call("PUT", f"/admin/providers/{PROVIDER}/products/ETH/rates/{(d + dt.timedelta(days=4)).isoformat()}",
               json={"rate": "600"})
    advance_to(stack, at(4, 20))
    expected.append(interest(balance, 600))
    balance += expected[-1]
    assert dec(expected[-1]) == Decimal("0.000328986033509438")
    assert dec(balance) == Decimal("2.001660689882593503")

    # 6. Rewards, grouped into rate periods.
    since = iso_ms(at(0, 0))
    ex.privatePostV1StakingRewards({"since": since})
    day_end = [iso_ms(at(n, 20)) for n in range(5)]
    first_total = dec(sum(expected[:3], Fraction(0)))
    assert raw(ex) == {PROVIDER: {"ETH": {
        "providerId": PROVIDER, "currency": "ETH", "accrualTotal": dec(sum(expected, Fraction(0))),
        "ratePeriods": [
            {"providerId": PROVIDER, "currency": "ETH", "apyPct": Decimal("5.55"), "ratePct": Decimal("5.4"),
             "numberOfAccruals": Decimal(3), "accrualTotal": first_total, "firstAccrualAt": day_end[1],
             "lastAccrualAt": day_end[3]},
            {"providerId": PROVIDER, "currency": "ETH", "apyPct": Decimal("6.18"), "ratePct": Decimal(6),
             "numberOfAccruals": Decimal(1), "accrualTotal": dec(expected[3]), "firstAccrualAt": day_end[4],
             "lastAccrualAt": day_end[4]}]}}}
    assert first_total == Decimal("0.001331703849084065")

    # 7. History, paged as Gemini documents it: newest first, until = oldest dateTime - 1.
    seen: list[dict[str, Any]] = []
    until: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if until is not None:
            params["until"] = until
        groups = ex.privatePostV1StakingHistory(params)
        page = [t for g in raw(ex) for t in g["transactions"]]
        if not page:
            break
        assert all(g["providerId"] == PROVIDER for g in groups)
        seen += page
        until = int(min(t["dateTime"] for t in page)) - 1
    assert [(t["transactionType"], t["amount"], int(t["dateTime"])) for t in seen] == [
        ("Interest", dec(expected[3]), int(at(4, 20).timestamp() * 1000)),
        ("Redeem", Decimal(1), int(at(4, 10).timestamp() * 1000)),
        ("Interest", dec(expected[2]), int(at(3, 20).timestamp() * 1000)),
        ("Interest", dec(expected[1]), int(at(2, 20).timestamp() * 1000)),
        ("Interest", dec(expected[0]), int(at(1, 20).timestamp() * 1000)),
        ("Deposit", Decimal(3), int(at(0, 12).timestamp() * 1000)),
    ]
    interest_events = [t for t in seen if t["transactionType"] == "Interest"]
    assert all((t["priceCurrency"], t["priceAmount"]) == ("USD", Decimal(3000)) for t in interest_events)
    assert all("priceCurrency" not in t for t in seen if t["transactionType"] != "Interest")
    assert seen[-1]["transactionId"] == staked["transactionId"]

    # 8. The books balance, the staking balances included.
    stack.audit_ok()
    balances = stack.call("GET", f"/admin/users/{user['uid']}/staking-balances")
    assert balances == [{"providerId": PROVIDER, "ccy": "ETH", "balance": str(dec(balance)), "pendingUnstake": "0"}]


def test_the_payload_is_what_gets_signed(fresh_stack: Callable[..., Stack]) -> None:
    """ccxt puts every parameter in the signed payload header (and a copy in the body, which the
    server ignores): a body saying otherwise changes nothing."""
    stack = fresh_stack()
    stack.call("POST", "/admin/providers", json={"name": "Example Validators", "providerId": PROVIDER})
    stack.call("PUT", f"/admin/providers/{PROVIDER}/products/ETH", json={})
    user = stack.call("POST", "/admin/users", json={"env": "live", "kycLevel": 2})
    stack.add_key(user["uid"], env="live", funds={"ETH": "5"})
    key = stack.call("POST", f"/admin/users/{user['uid']}/gemini-keys", json={"roles": ["Trader"]})
    ex = gemini(stack, key["apiKey"], key["secret"])
    signed = ex.sign("v1/staking/stake", ["private"], "POST",
                     {"providerId": PROVIDER, "currency": "ETH", "amount": "2"})
    payload = json.loads(base64.b64decode(signed["headers"]["X-GEMINI-PAYLOAD"]))
    assert payload["amount"] == "2"
    reply = stack.admin.post(stack.base_url + "/v1/staking/stake", headers=signed["headers"],
                             content=json.dumps({"providerId": PROVIDER, "currency": "ETH", "amount": "4"}))
    assert reply.status_code == 200, reply.text
    assert reply.json()["amount"] == 2
    assert stack.balances(user["uid"])[("6", "ETH")] == Decimal(3)
