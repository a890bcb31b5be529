"""The Gemini staking API (``/v1``) through HTTP, on SQLite and PostgreSQL: ccxt.gemini 4.5.90
unchanged (only its URLs point at the server) for what it can send, and raw requests signed the
way ccxt signs for what it cannot (missing headers, bad payloads, master keys, racing nonces).

Every refused request is checked to have changed nothing: funding balances, staking balances
and the staking history stay as they were.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt
import httpx
import pytest
import uvicorn

from stakehouse.api.gemini import app as gemini_app
from stakehouse.api.gemini.routes import ALL, Call, Route
from stakehouse.app import create_app
from stakehouse.config import Settings
from stakehouse.security import new_server_key
from stakehouse.wiring import Services
from tests.stack import Stack, free_port

UTC = dt.UTC

#: Spec section 7.5: the exception ccxt must raise for each reason.
CCXT_RAISES: dict[str, type[Exception]] = {
    "MissingApikeyHeader": ccxt.AuthenticationError,
    "MissingPayloadHeader": ccxt.AuthenticationError,
    "MissingSignatureHeader": ccxt.AuthenticationError,
    "InvalidApiKey": ccxt.AuthenticationError,
    "InvalidSignature": ccxt.AuthenticationError,
    "InvalidJson": ccxt.BadRequest,
    "EndpointNotFound": ccxt.BadRequest,
    "EndpointMismatch": ccxt.BadRequest,
    "MissingNonce": ccxt.ExchangeError,
    "InvalidNonce": ccxt.InvalidNonce,
    "MissingRole": ccxt.AuthenticationError,
    "RemoteAddressForbidden": ccxt.ExchangeError,
    "MissingAccounts": ccxt.ExchangeError,
    "InvalidAccountName": ccxt.ExchangeError,
    "MissingPayloadKey": ccxt.ExchangeError,
    "InvalidQuantity": ccxt.InvalidOrder,
    "InvalidSymbol": ccxt.BadRequest,
    "InvalidTimestampInPayload": ccxt.BadRequest,
    "InsufficientFunds": ccxt.InsufficientFunds,
    "RateLimit": ccxt.RateLimitExceeded,
    "System": ccxt.ExchangeError,
    "Maintenance": ccxt.OnMaintenance,
    "AccountFrozen": ccxt.ExchangeError,
}


# -- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    api_key: str
    secret: str
    uid: str


@pytest.fixture(autouse=True)
def books_balance_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    """The audit passes after every scenario on the shared server (fresh servers audit themselves)."""
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").audit_ok()


def gemini_key(stack: Stack, uid: str, *, scope: str = "account", roles: tuple[str, ...] = ("Trader",),
               time_based_nonce: bool = False, ips: tuple[str, ...] = ()) -> Key:
    """A Gemini key made through the admin API."""
    made = stack.call("POST", f"/admin/users/{uid}/gemini-keys", json={
        "scope": scope, "roles": list(roles), "timeBasedNonce": time_based_nonce, "ips": list(ips)})
    assert made["apiKey"].startswith(scope + "-") and made["roles"] == list(roles)
    return Key(made["apiKey"], made["secret"], uid)


def ccxt_gemini(stack: Stack, k: Key, **options: Any) -> ccxt.gemini:
    ex = ccxt.gemini({"apiKey": k.api_key, "secret": k.secret, "options": options})
    base = stack.base_url
    ex.urls["api"] = {"public": base, "private": base, "web": base, "webExchange": base}
    return ex


def exact(ex: ccxt.gemini) -> Any:
    """The last reply with every number as an exact Decimal."""
    return json.loads(ex.last_http_response, parse_float=Decimal, parse_int=Decimal)


def business_now(stack: Stack) -> dt.datetime:
    return dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"]).astimezone(UTC)


def business_date(stack: Stack) -> dt.date:
    return business_now(stack).date()


def publish(stack: Stack, pid: str, ccy: str, day: dt.date, bps: str) -> None:
    stack.call("PUT", f"/admin/providers/{pid}/products/{ccy}/rates/{day.isoformat()}", json={"rate": bps})


def new_product(stack: Stack, ccy: str = "ETH", bps: str = "540", **settings: Any) -> str:
    """A provider of its own offering ``ccy`` at ``bps`` (from yesterday on), through the admin API;
    its provider id."""
    pid: str = stack.call("POST", "/admin/providers", json={"name": "Test provider"})["providerId"]
    stack.call("PUT", f"/admin/providers/{pid}/products/{ccy}", json=settings)
    publish(stack, pid, ccy, business_date(stack) - dt.timedelta(days=1), bps)
    return pid


def staked(stack: Stack, uid: str) -> list[tuple[str, str, Decimal, Decimal]]:
    """(provider, ccy, balance, pending unstake) of every staking balance, from the admin API."""
    return [(b["providerId"], b["ccy"], Decimal(b["balance"]), Decimal(b["pendingUnstake"]))
            for b in stack.call("GET", f"/admin/users/{uid}/staking-balances")]


def staker(stack: Stack, funds: dict[str, str] | None = None, **key: Any) -> Key:
    c = stack.new_user(funds=funds if funds is not None else {"ETH": "10"})
    return gemini_key(stack, c.uid, **key)


_nonce_lock = threading.Lock()
_last_nonce = 0


def next_nonce() -> int:
    """Milliseconds, strictly increasing in this process (as ccxt's own counter)."""
    global _last_nonce
    with _nonce_lock:
        _last_nonce = max(int(time.time() * 1000), _last_nonce + 1)
        return _last_nonce


def signed_headers(k: Key, payload_text: str, *, secret: str | None = None) -> dict[str, str]:
    b64 = base64.b64encode(payload_text.encode()).decode()
    sig = hmac.new((secret or k.secret).encode(), b64.encode(), hashlib.sha384).hexdigest()
    return {"X-GEMINI-APIKEY": k.api_key, "X-GEMINI-PAYLOAD": b64, "X-GEMINI-SIGNATURE": sig,
            "Content-Type": "text/plain"}


def payload_text(path: str, fields: dict[str, Any] | None = None, *, nonce: Any = None) -> str:
    body: dict[str, Any] = {"request": path, "nonce": str(next_nonce()) if nonce is None else nonce}
    body.update(fields or {})
    return json.dumps(body)


def post(stack: Stack, k: Key, path: str, fields: dict[str, Any] | None = None, *, nonce: Any = None,
         text: str | None = None, secret: str | None = None, body: str = "", method: str = "POST",
         timeout: float = 30) -> httpx.Response:
    """A request signed as ccxt signs it (``text``: the exact payload JSON to send instead)."""
    text = text if text is not None else payload_text(path, fields, nonce=nonce)
    return httpx.request(method, stack.base_url + path, headers=signed_headers(k, text, secret=secret),
                         content=body, timeout=timeout)


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return json.loads(r.text, parse_float=Decimal, parse_int=Decimal)


def refused(r: httpx.Response, status: int, reason: str) -> str:
    """Assert an error reply; check ccxt's own error handler maps it as the spec says; its message."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"result", "reason", "message"} and body["result"] == "error", body
    assert body["reason"] == reason, body
    assert "Traceback" not in r.text and 'File "' not in r.text
    ex = ccxt.gemini()
    with pytest.raises(ccxt.BaseError) as raised:
        ex.handle_errors(r.status_code, r.reason_phrase, str(r.url), "POST", dict(r.headers), r.text, body, None, None)
    assert type(raised.value) is CCXT_RAISES[reason], (reason, type(raised.value))
    message: str = body["message"]
    return message


@dataclass(frozen=True)
class Books:
    funding: dict[tuple[str, str], Decimal]
    staking: list[tuple[str, str, Decimal, Decimal]]
    journal: list[Any]


def books(stack: Stack, uid: str) -> Books:
    """Everything a staking call could change for ``uid`` (every stake and unstake is a journal entry)."""
    return Books(stack.balances(uid), staked(stack, uid), stack.call("GET", f"/admin/users/{uid}/journal"))


@pytest.fixture
def eth_product(stack: Stack) -> str:
    return new_product(stack)


# -- happy paths through ccxt ------------------------------------------------------------------


def test_ccxt_rates_stake_balances_unstake_history(stack: Stack, eth_product: str) -> None:
    pid = eth_product
    k = staker(stack)
    ex = ccxt_gemini(stack, k)

    rates = ex.publicGetV1StakingRates({"currency": "SOL"})  # query parameters are ignored
    assert set(rates[pid]) == {"ETH"}
    assert exact(ex)[pid]["ETH"] == {"providerId": pid, "rate": Decimal(540), "apyPct": Decimal("5.55"),
                                     "ratePct": Decimal("5.4")}
    assert '"rate":540,' in ex.last_http_response and '"apyPct":5.55' in ex.last_http_response

    reply = ex.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "2.5"})
    got = exact(ex)
    assert got == {"transactionId": reply["transactionId"], "providerId": pid, "currency": "ETH",
                   "amount": Decimal("2.5"), "accrualTotal": Decimal(0), "rates": {"rate": Decimal(540)}}
    assert list(json.loads(ex.last_http_response)) == ["transactionId", "providerId", "currency", "amount",
                                                       "accrualTotal", "rates"]
    assert re.fullmatch(r"[0-9A-Z]{8}", got["transactionId"])
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal("7.5")

    ex.privatePostV1BalancesStaking()
    assert exact(ex) == [{"type": "Staking", "currency": "ETH", "balance": Decimal("2.5"), "available": Decimal(0),
                          "availableForWithdrawal": Decimal("2.5"),
                          "balanceByProvider": {pid: {"balance": Decimal("2.5")}}}]

    before = business_now(stack)
    out = ex.privatePostV1StakingUnstake({"providerId": pid.upper(), "currency": "eth", "amount": "1"})
    after = business_now(stack)
    got = exact(ex)
    assert got == {"transactionId": out["transactionId"], "amount": Decimal(1), "amountPaidSoFar": Decimal(1),
                   "amountRemaining": Decimal(0), "currency": "ETH", "requestInitiated": out["requestInitiated"]}
    assert "providerId" not in got
    initiated = dt.datetime.strptime(got["requestInitiated"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert got["requestInitiated"].endswith("Z") and len(got["requestInitiated"]) == 24
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= initiated <= after
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal("8.5")

    ex.privatePostV1StakingHistory()
    hist = exact(ex)
    assert [g["providerId"] for g in hist] == [pid]
    txs = hist[0]["transactions"]
    assert [(t["transactionType"], t["amount"], t["amountCurrency"]) for t in txs] == [
        ("Redeem", Decimal(1), "ETH"), ("Deposit", Decimal("2.5"), "ETH")]  # newest first
    assert txs[0]["transactionId"] == out["transactionId"] and txs[1]["transactionId"] == reply["transactionId"]
    assert all(set(t) == {"transactionId", "transactionType", "amountCurrency", "amount", "dateTime"} for t in txs)
    assert txs[0]["dateTime"] == (initiated - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)
    assert '"dateTime":' + str(txs[0]["dateTime"]) + "}" in ex.last_http_response  # an integer, not a string

    ex.privatePostV1StakingHistory({"sortAsc": True, "limit": 1})
    assert [t["transactionType"] for g in exact(ex) for t in g["transactions"]] == ["Deposit"]

    assert ex.privatePostV1StakingRewards({"since": "2020-01-01T00:00:00.000Z"}) == {}
    ex.privatePostV1BalancesStaking()
    assert exact(ex)[0]["balance"] == Decimal("1.5")


def test_amount_forms_and_request_without_leading_slash(stack: Stack, eth_product: str) -> None:
    pid = eth_product
    k = staker(stack)
    # a JSON number, read from its literal text (0.1 has no exact float); `request` without the slash
    text = ('{"request": "v1/staking/stake", "nonce": ' + str(next_nonce()) + ', "providerId": "' + pid
            + '", "currency": "ETH", "amount": 0.1}')
    assert ok(post(stack, k, "/v1/staking/stake", text=text))["amount"] == Decimal("0.1")
    # 18 decimals, exact; an integer nonce
    got = ok(post(stack, k, "/v1/staking/stake", {"providerId": pid, "currency": "ETH",
                                                   "amount": "0.123456789012345678"}, nonce=next_nonce()))
    assert got["amount"] == Decimal("0.123456789012345678")
    assert '"amount":0.123456789012345678,' in post(stack, k, "/v1/staking/history").text
    # a JSON integer amount; a query string in `request` is ignored
    text = payload_text("/v1/staking/unstake?x=1", {"providerId": pid, "currency": "ETH", "amount": 0})
    refused(post(stack, k, "/v1/staking/unstake", text=text), 400, "InvalidQuantity")
    text = payload_text("/v1/staking/unstake?x=1", {"providerId": pid, "currency": "ETH"}).replace(
        "}", ', "amount": 0.2}')
    assert ok(post(stack, k, "/v1/staking/unstake", text=text))["amountPaidSoFar"] == Decimal("0.2")
    # the body (ccxt sends the parameters there too) is ignored: only the payload counts
    bal = ok(post(stack, k, "/v1/balances/staking", body='{"account": "nope", "amount": "5"}'))
    assert bal[0]["balance"] == Decimal("0.023456789012345678")
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal("9.976543210987654322")
    assert staked(stack, k.uid) == [(pid, "ETH", Decimal("0.023456789012345678"), Decimal(0))]


# -- errors ccxt itself runs into ----------------------------------------------------------------


def test_ccxt_raises_the_spec_exceptions(stack: Stack, eth_product: str) -> None:
    pid = eth_product
    k = staker(stack)
    ex = ccxt_gemini(stack, k)
    ex.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "3"})
    start = books(stack, k.uid)
    stake = ex.privatePostV1StakingStake
    unstake = ex.privatePostV1StakingUnstake

    cases: list[tuple[Callable[[], Any], type[Exception], str]] = [
        (lambda: stake({"providerId": pid, "currency": "ETH", "amount": "8"}), ccxt.InsufficientFunds,
         "Insufficient ETH"),
        (lambda: unstake({"providerId": pid, "currency": "ETH", "amount": "3.000000000000000001"}),
         ccxt.InsufficientFunds, ""),
        (lambda: stake({"providerId": pid, "currency": "ETH", "amount": "-1"}), ccxt.InvalidOrder, "amount"),
        (lambda: stake({"providerId": pid, "currency": "ETH", "amount": "0"}), ccxt.InvalidOrder, "amount"),
        (lambda: stake({"providerId": pid, "currency": "ETH", "amount": "1e0"}), ccxt.InvalidOrder, "amount"),
        (lambda: stake({"providerId": pid, "currency": "ETH", "amount": "abc"}), ccxt.InvalidOrder, "amount"),
        (lambda: stake({"providerId": pid, "currency": "ETH", "amount": "0.0000000000000000001"}), ccxt.InvalidOrder,
         "amount"),
        (lambda: stake({"providerId": pid, "currency": "SOL", "amount": "1"}), ccxt.BadRequest, ""),
        (lambda: stake({"providerId": pid, "currency": "NOPE", "amount": "1"}), ccxt.BadRequest, ""),
        (lambda: stake({"providerId": "62b21e17-2534-4b9f-afcf-b7edb609dd8d", "currency": "ETH", "amount": "1"}),
         ccxt.BadRequest, ""),
        (lambda: stake({"providerId": "not-a-uuid", "currency": "ETH", "amount": "1"}), ccxt.BadRequest, ""),
        (lambda: stake({"currency": "ETH", "amount": "1"}), ccxt.ExchangeError, "providerId"),
        (lambda: stake({"providerId": pid, "amount": "1"}), ccxt.ExchangeError, "currency"),
        (lambda: unstake({"providerId": pid, "currency": "ETH"}), ccxt.ExchangeError, "amount"),
        (lambda: ex.privatePostV1StakingRewards({}), ccxt.ExchangeError, "since"),
        (lambda: ex.privatePostV1StakingRewards({"since": "yesterday"}), ccxt.BadRequest, "since"),
        (lambda: ex.privatePostV1StakingHistory({"until": "2022-13-01"}), ccxt.BadRequest, "until"),
        (lambda: ex.privatePostV1StakingHistory({"since": "2022-11-02", "until": "2022-11-01"}), ccxt.BadRequest,
         "until"),
        (lambda: ex.privatePostV1StakingHistory({"interestOnly": "yes"}), ccxt.BadRequest, "interestOnly"),
        (lambda: ex.privatePostV1BalancesStaking({"account": "someone-else"}), ccxt.ExchangeError, "someone-else"),
        (lambda: ex.request("v1/staking/nope", ["private"], "POST", {}), ccxt.BadRequest, "not found"),
    ]
    for call, exc, text in cases:
        with pytest.raises(ccxt.BaseError) as raised:
            call()
        assert type(raised.value) is exc, (exc, raised.value)
        assert text in str(raised.value)
        assert books(stack, k.uid) == start

    stranger = ccxt_gemini(stack, Key("account-" + "X" * 20, k.secret, k.uid))
    with pytest.raises(ccxt.AuthenticationError, match="Invalid API key"):
        stranger.privatePostV1BalancesStaking()
    wrong_secret = ccxt_gemini(stack, Key(k.api_key, "not-the-secret", k.uid))
    with pytest.raises(ccxt.AuthenticationError, match="InvalidSignature"):
        wrong_secret.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "1"})
    # a nonce far ahead (another client of the key): ccxt's millisecond nonce has not increased
    ok(post(stack, k, "/v1/balances/staking", nonce=str(next_nonce() + 10**9)))
    with pytest.raises(ccxt.InvalidNonce, match="has not increased"):
        ex.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "1"})
    assert books(stack, k.uid) == start

    auditor = ccxt_gemini(stack, gemini_key(stack, k.uid, roles=("Auditor",)))
    assert auditor.privatePostV1BalancesStaking()[0]["balance"] == 3
    assert auditor.privatePostV1StakingHistory()[0]["providerId"] == pid
    assert auditor.privatePostV1StakingRewards({"since": 0}) == {}
    with pytest.raises(ccxt.AuthenticationError, match=r"\[Trader, FundManager\].*\[Auditor\]"):
        auditor.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "1"})
    with pytest.raises(ccxt.AuthenticationError, match=r"roles \[Auditor\]"):
        auditor.privatePostV1StakingUnstake({"providerId": pid, "currency": "ETH", "amount": "1"})
    fund_manager = ccxt_gemini(stack, gemini_key(stack, k.uid, roles=("FundManager",)))
    fund_manager.privatePostV1StakingUnstake({"providerId": pid, "currency": "ETH", "amount": "1"})
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal(8)

    elsewhere = ccxt_gemini(stack, gemini_key(stack, k.uid, ips=("10.11.12.13",)))
    with pytest.raises(ccxt.ExchangeError, match=r"127\.0\.0\.1") as raised:
        elsewhere.privatePostV1StakingUnstake({"providerId": pid, "currency": "ETH", "amount": "1"})
    assert type(raised.value) is ccxt.ExchangeError
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal(8)
    here = ccxt_gemini(stack, gemini_key(stack, k.uid, ips=("127.0.0.0/8",)))
    assert here.privatePostV1BalancesStaking()[0]["balance"] == 2


def test_deposit_usd_limit_and_missing_price(stack: Stack) -> None:
    pid = new_product(stack, "SOL", "700", deposit_usd_limit="1000")
    k = staker(stack, {"SOL": "100"})
    ex = ccxt_gemini(stack, k)
    ex.publicGetV1StakingRates()
    assert exact(ex)[pid]["SOL"]["depositUsdLimit"] == Decimal(1000)
    # SOL's USD price is its spot index (SOL-USDT): held still here, and pinned at 100
    stack.call("PUT", "/admin/markets/SOL-USDT", json={"walk": False})
    stack.call("PUT", "/admin/prices/SOL", json={"price": "100"})
    ex.privatePostV1StakingStake({"providerId": pid, "currency": "SOL", "amount": "9.5"})
    with pytest.raises(ccxt.InvalidOrder, match="1000 USD per month") as raised:
        ex.privatePostV1StakingStake({"providerId": pid, "currency": "SOL", "amount": "0.500000001"})
    assert type(raised.value) is ccxt.InvalidOrder
    assert stack.balances(k.uid)[("6", "SOL")] == Decimal("90.5")
    ex.privatePostV1StakingStake({"providerId": pid, "currency": "SOL", "amount": "0.5"})  # exactly the limit
    assert stack.balances(k.uid)[("6", "SOL")] == Decimal(90)


def test_frozen_account_is_refused_and_unchanged(stack: Stack, eth_product: str) -> None:
    k = staker(stack)
    ok(post(stack, k, "/v1/staking/stake", {"providerId": eth_product, "currency": "ETH", "amount": "1"}))
    stack.call("POST", f"/admin/users/{k.uid}/freeze", json={"functions": ["staking"]})
    start = books(stack, k.uid)
    for path, amount in (("/v1/staking/stake", "1"), ("/v1/staking/unstake", "0.5")):
        msg = refused(post(stack, k, path, {"providerId": eth_product, "currency": "ETH", "amount": amount}),
                      403, "AccountFrozen")
        assert "frozen" in msg
    assert books(stack, k.uid) == start
    assert ok(post(stack, k, "/v1/balances/staking"))[0]["balance"] == 1  # reads still work


# -- the pipeline's refusals, raw ----------------------------------------------------------------


def test_every_auth_refusal_changes_nothing(stack: Stack, eth_product: str) -> None:
    pid = eth_product
    k = staker(stack)
    fields = {"providerId": pid, "currency": "ETH", "amount": "1"}
    path = "/v1/staking/stake"
    start = books(stack, k.uid)
    url = stack.base_url + path
    good = signed_headers(k, payload_text(path, fields))

    for drop, reason in (("X-GEMINI-APIKEY", "MissingApikeyHeader"), ("X-GEMINI-PAYLOAD", "MissingPayloadHeader"),
                         ("X-GEMINI-SIGNATURE", "MissingSignatureHeader")):
        headers = {h: v for h, v in good.items() if h != drop}
        refused(httpx.post(url, headers=headers), 400, reason)
        refused(httpx.post(url, headers={**headers, drop: ""}), 400, reason)
    assert refused(httpx.post(url), 400, "MissingApikeyHeader")
    msg = refused(httpx.post(url, headers={**good, "X-GEMINI-APIKEY": "account-unknownunknownunk"}), 400,
                  "InvalidApiKey")
    assert msg == "Invalid API key"
    refused(httpx.post(url, headers={**good, "X-GEMINI-APIKEY": "x" * 500}), 400, "InvalidApiKey")
    assert refused(post(stack, k, path, fields, secret="wrong"), 400, "InvalidSignature") == "InvalidSignature"
    tampered = dict(good)
    tampered["X-GEMINI-PAYLOAD"] = base64.b64encode(payload_text(path, {**fields, "amount": "2"}).encode()).decode()
    refused(httpx.post(url, headers=tampered), 400, "InvalidSignature")
    refused(httpx.post(url, headers={**good, "X-GEMINI-SIGNATURE": good["X-GEMINI-SIGNATURE"][:-2]}), 400,
            "InvalidSignature")
    # upper-case hex is the same signature
    ok(httpx.post(url, headers={**good, "X-GEMINI-SIGNATURE": good["X-GEMINI-SIGNATURE"].upper()}))
    start = books(stack, k.uid)

    def signed_raw(b64: str) -> dict[str, str]:
        sig = hmac.new(k.secret.encode(), b64.encode(), hashlib.sha384).hexdigest()
        return {"X-GEMINI-APIKEY": k.api_key, "X-GEMINI-PAYLOAD": b64, "X-GEMINI-SIGNATURE": sig}

    for b64 in ("not base64 at all!", base64.b64encode(b"not json").decode(), base64.b64encode(b"[1,2]").decode(),
                base64.b64encode(b'"text"').decode(), base64.b64encode(b'{"nonce": NaN}').decode()):
        refused(httpx.post(url, headers=signed_raw(b64)), 400, "InvalidJson")
    refused(post(stack, k, path, text=json.dumps({"nonce": str(next_nonce()), **fields})), 400, "EndpointNotFound")
    msg = refused(post(stack, k, path, text=payload_text("/v1/staking/unstake", fields)), 400, "EndpointMismatch")
    assert "/v1/staking/unstake" in msg
    refused(post(stack, k, path, text=payload_text("/v1/staking/stake/", fields)), 400, "EndpointMismatch")
    refused(post(stack, k, path, text=json.dumps({"request": path, **fields})), 400, "MissingNonce")
    for bad in ("abc", "-1", "0", "1e12", "9000000000000", "", True, 12.5):
        text = json.dumps({"request": path, "nonce": bad, **fields})
        refused(post(stack, k, path, text=text), 400, "InvalidNonce")
    assert books(stack, k.uid) == start


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/staking/stake"), ("GET", "/v1/balances/staking"), ("PUT", "/v1/staking/unstake"),
    ("POST", "/v1/staking/rates"), ("POST", "/v1/staking/nope"), ("GET", "/v1/nope"), ("GET", "/v1"),
    ("POST", "/v1/staking/stake/"), ("DELETE", "/v1/staking/history"),
])
def test_unknown_route_or_method_is_404(stack: Stack, eth_product: str, method: str, path: str) -> None:
    k = staker(stack)
    start = books(stack, k.uid)
    fields = {"providerId": eth_product, "currency": "ETH", "amount": "1"}
    r = post(stack, k, path, fields, method=method)
    msg = refused(r, 404, "EndpointNotFound")
    assert path in msg
    assert books(stack, k.uid) == start


def test_rates_need_no_auth_and_ignore_query(stack: Stack, eth_product: str) -> None:
    r = httpx.get(stack.base_url + "/v1/staking/rates?currency=SOL&providerId=x")
    rates = ok(r)
    assert rates[eth_product] == {"ETH": {"providerId": eth_product, "rate": Decimal(540), "apyPct": Decimal("5.55"),
                                          "ratePct": Decimal("5.4")}}
    assert r.headers["content-type"] == "application/json"


# -- nonces --------------------------------------------------------------------------------------


def test_nonce_is_consumed_once_the_signature_checks_out(stack: Stack, eth_product: str) -> None:
    pid = eth_product
    k = staker(stack)
    auditor = gemini_key(stack, k.uid, roles=("Auditor",))
    fenced = gemini_key(stack, k.uid, ips=("10.0.0.1",))
    fields = {"providerId": pid, "currency": "ETH", "amount": "1"}
    stake = "/v1/staking/stake"

    n = next_nonce()
    refused(post(stack, k, stake, {**fields, "amount": "50"}, nonce=str(n)), 406, "InsufficientFunds")
    msg = refused(post(stack, k, stake, fields, nonce=str(n)), 400, "InvalidNonce")
    assert msg == f"Nonce '{n}' has not increased since your last call to the Gemini API."
    refused(post(stack, k, stake, fields, nonce=str(n - 1)), 400, "InvalidNonce")
    for fails in ({**fields, "currency": "NOPE"}, {**fields, "amount": "x"}, {"currency": "ETH"}):
        n = next_nonce()
        post(stack, k, stake, fails, nonce=n)
        refused(post(stack, k, "/v1/balances/staking", nonce=n), 400, "InvalidNonce")
    n = next_nonce()
    refused(post(stack, auditor, stake, fields, nonce=n), 403, "MissingRole")
    refused(post(stack, auditor, "/v1/balances/staking", nonce=n), 400, "InvalidNonce")
    n = next_nonce()
    refused(post(stack, fenced, "/v1/balances/staking", nonce=n), 403, "RemoteAddressForbidden")
    refused(post(stack, fenced, "/v1/balances/staking", nonce=n), 400, "InvalidNonce")
    # not consumed before the signature, the payload and the route have checked out
    n = next_nonce()
    refused(post(stack, k, stake, fields, nonce=str(n), secret="wrong"), 400, "InvalidSignature")
    refused(post(stack, k, stake, text=payload_text("/v1/staking/unstake", fields, nonce=str(n))), 400,
            "EndpointMismatch")
    ok(post(stack, k, stake, fields, nonce=str(n)))
    # each key has its own sequence: the same nonce is fresh for another key
    other = gemini_key(stack, k.uid)
    ok(post(stack, other, "/v1/balances/staking", nonce=str(n)))
    # a key that sent milliseconds refuses seconds from then on
    refused(post(stack, other, "/v1/balances/staking", nonce=str(int(time.time()))), 400, "InvalidNonce")
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal(9)


def test_time_based_nonce(stack: Stack) -> None:
    k = staker(stack, time_based_nonce=True)
    path = "/v1/balances/staking"
    now = time.time()
    ok(post(stack, k, path, nonce=f"{int(now) - 20}"))
    ok(post(stack, k, path, nonce=f"{int(now) - 20}.5"))  # a fraction: several calls in one second
    ok(post(stack, k, path, nonce=int(now)))
    msg = refused(post(stack, k, path, nonce=int(now)), 400, "InvalidNonce")
    assert "has not increased" in msg  # replay inside the window (open point 2)
    msg = refused(post(stack, k, path, nonce=str(int(now) - 45)), 400, "InvalidNonce")
    assert re.fullmatch(rf"Nonce '{int(now) - 45}' is not within 30 seconds of server time '[0-9]{{10}}'", msg), msg
    server = int(msg.rsplit("'", 2)[1])
    assert abs(server - now) < 5
    refused(post(stack, k, path, nonce=str(int(time.time()) + 40)), 400, "InvalidNonce")
    msg = refused(post(stack, k, path, nonce=str(next_nonce())), 400, "InvalidNonce")  # milliseconds (open point 1)
    assert "not within 30 seconds" in msg
    ok(post(stack, k, path, nonce=f"{time.time() + 1:.3f}"))
    # ccxt with its seconds nonce (options['nonce'] = 'seconds')
    time.sleep(2.1)
    ex = ccxt_gemini(stack, k, nonce="seconds")
    assert ex.privatePostV1BalancesStaking() == []
    assert ex.privatePostV1StakingHistory() == []


def test_racing_nonces_exactly_one_wins(stack: Stack, eth_product: str) -> None:
    k = staker(stack)
    threads_per_round, rounds = 4, 5
    fields = {"providerId": eth_product, "currency": "ETH", "amount": "1"}
    lock = threading.Lock()
    for _ in range(rounds):
        text = payload_text("/v1/staking/stake", fields)  # one nonce, sent by every thread
        headers = signed_headers(k, text)
        barrier = threading.Barrier(threads_per_round)
        replies: list[httpx.Response] = []

        def send(h: dict[str, str] = headers, b: threading.Barrier = barrier,
                 out: list[httpx.Response] = replies) -> None:
            with httpx.Client(timeout=30) as client:
                b.wait()
                r = client.post(stack.base_url + "/v1/staking/stake", headers=h)
            with lock:
                out.append(r)

        threads = [threading.Thread(target=send) for _ in range(threads_per_round)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [r for r in replies if r.status_code == 200]
        losers = [r for r in replies if r.status_code != 200]
        assert len(winners) == 1, [r.text for r in replies]
        for r in losers:
            refused(r, 400, "InvalidNonce")
    assert stack.balances(k.uid)[("6", "ETH")] == Decimal(10 - rounds)
    assert staked(stack, k.uid) == [(eth_product, "ETH", Decimal(rounds), Decimal(0))]


# -- keys and accounts ---------------------------------------------------------------------------


def test_master_and_account_keys_name_accounts(stack: Stack, eth_product: str) -> None:
    pid = eth_product
    master = stack.new_user(funds={"ETH": "10"})
    sub_name = "gsub" + hex(next_nonce())[2:]
    sub = stack.call("POST", f"/admin/users/{master.uid}/sub-accounts", json={"subAcct": sub_name})
    stack.call("POST", f"/admin/users/{sub['uid']}/deposits", json={"ccy": "ETH", "amt": "4"})
    mkey = gemini_key(stack, master.uid, scope="master", roles=("Trader",))
    assert mkey.api_key.startswith("master-")
    fields = {"providerId": pid, "currency": "ETH", "amount": "1"}
    start_master, start_sub = books(stack, master.uid), books(stack, sub["uid"])

    msg = refused(post(stack, mkey, "/v1/staking/stake", fields), 400, "MissingAccounts")
    assert msg == "Expected a JSON payload with accounts"
    refused(post(stack, mkey, "/v1/staking/stake", {**fields, "account": "nope"}), 400, "InvalidAccountName")
    refused(post(stack, mkey, "/v1/staking/stake", {**fields, "account": 7}), 400, "InvalidAccountName")
    assert books(stack, master.uid) == start_master and books(stack, sub["uid"]) == start_sub

    ok(post(stack, mkey, "/v1/staking/stake", {**fields, "account": sub_name}))
    assert stack.balances(sub["uid"])[("6", "ETH")] == Decimal(3)
    assert books(stack, master.uid) == start_master
    ok(post(stack, mkey, "/v1/staking/stake", {**fields, "amount": "2", "account": "primary"}))
    assert stack.balances(master.uid)[("6", "ETH")] == Decimal(8)
    assert ok(post(stack, mkey, "/v1/balances/staking", {"account": sub_name}))[0]["balance"] == 1
    assert ok(post(stack, mkey, "/v1/balances/staking", {"account": "primary"}))[0]["balance"] == 2

    # ccxt refuses master keys itself (spec 7.3)
    with pytest.raises(ccxt.AuthenticationError, match="master-keys are not-supported"):
        ccxt_gemini(stack, mkey).privatePostV1BalancesStaking()

    # an account key: its own account by default, or named as itself (open point 16)
    akey = gemini_key(stack, master.uid)
    assert ok(post(stack, akey, "/v1/balances/staking", {"account": "primary"}))[0]["balance"] == 2
    refused(post(stack, akey, "/v1/balances/staking", {"account": sub_name}), 400, "InvalidAccountName")
    skey = gemini_key(stack, sub["uid"])
    assert ok(post(stack, skey, "/v1/balances/staking"))[0]["balance"] == 1
    assert ok(post(stack, skey, "/v1/balances/staking", {"account": sub_name}))[0]["balance"] == 1
    refused(post(stack, skey, "/v1/balances/staking", {"account": "primary"}), 400, "InvalidAccountName")

    # revoked: unknown from then on
    stack.call("DELETE", f"/admin/gemini-keys/{akey.api_key}")
    refused(post(stack, akey, "/v1/balances/staking"), 400, "InvalidApiKey")


# -- interest: history and rewards over accrual days -------------------------------------------


def test_history_and_rewards_over_accrual_days(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    pid = new_product(stack, "ETH", "540")
    other = new_product(stack, "ETH", "300")
    # from the third day on (the stake's own accrual day earns nothing: its minimum balance is 0)
    publish(stack, pid, "ETH", business_date(stack) + dt.timedelta(days=3), "600")
    stack.call("PUT", "/admin/markets/ETH-USDT", json={"walk": False})  # ETH's USD price: its index, held still
    stack.call("PUT", "/admin/prices/ETH", json={"price": "2000.5"})
    k = staker(stack, {"ETH": "20"})
    ex = ccxt_gemini(stack, k)
    ex.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "10"})
    ex.privatePostV1StakingStake({"providerId": other, "currency": "ETH", "amount": "5"})
    stack.call("POST", "/admin/clock/advance", json={"seconds": 4 * 86400 + 3600})

    # the time-based window in the sandbox: business time is 4 days ahead, wall time still counts
    tk = gemini_key(stack, k.uid, time_based_nonce=True)
    ok(post(stack, tk, "/v1/balances/staking", nonce=str(int(time.time()))))
    business = int(business_now(stack).timestamp())
    ok(post(stack, tk, "/v1/balances/staking", nonce=str(business)))
    refused(post(stack, tk, "/v1/balances/staking", nonce=str(business - 3600)), 400, "InvalidNonce")

    ex.privatePostV1StakingHistory({"limit": 500})
    groups = exact(ex)
    flat = [(g["providerId"], t) for g in groups for t in g["transactions"]]
    interest = [t for _, t in flat if t["transactionType"] == "Interest"]
    assert len(interest) >= 6  # 3 or 4 accrual days for each of the two stakes
    for t in interest:
        assert t["priceCurrency"] == "USD" and t["priceAmount"] == Decimal("2000.5")
        assert list(t) == ["transactionId", "transactionType", "amountCurrency", "amount", "priceCurrency",
                           "priceAmount", "dateTime"]
        assert t["dateTime"] % 1000 == 0 and dt.datetime.fromtimestamp(int(t["dateTime"]) // 1000, UTC).hour == 20
    # grouped by provider in the order of the flat list (newest first): the groups' events are
    # each newest first and together hold every event
    times = [t["dateTime"] for _, t in flat]
    for g in groups:
        g_times = [t["dateTime"] for t in g["transactions"]]
        assert g_times == sorted(g_times, reverse=True)
    firsts = [g["transactions"][0]["dateTime"] for g in groups]
    assert firsts == sorted(firsts, reverse=True) and max(times) == firsts[0]
    assert {g["providerId"] for g in groups} == {pid, other} and len(groups) == 2
    first_interest = min((t for p, t in flat if p == pid and t["transactionType"] == "Interest"),
                         key=lambda t: t["dateTime"])
    assert first_interest["amount"] == (Decimal(10) * Decimal(540) / 10000 / 365).quantize(Decimal("1E-18"),
                                                                                         rounding="ROUND_DOWN")
    # the staking balance is principal plus every interest credited
    ex.privatePostV1BalancesStaking()
    bal = exact(ex)[0]
    paid = {p: sum((t["amount"] for q, t in flat if q == p and t["transactionType"] == "Interest"), Decimal(0))
            for p in (pid, other)}
    assert bal["balanceByProvider"] == {pid: {"balance": 10 + paid[pid]}, other: {"balance": 5 + paid[other]}}
    assert bal["balance"] == bal["availableForWithdrawal"] == 15 + paid[pid] + paid[other]

    # the documented paging recipe: sortAsc false, take the smallest dateTime X, until = X - 1 (ms).
    # Per provider: both providers accrue at the same millisecond, and a page boundary between
    # events of one millisecond would lose the rest of them (the recipe's own limitation).
    seen: list[str] = []
    for provider in (pid, other):
        until: int | None = None
        for _ in range(50):
            req: dict[str, Any] = {"limit": 2, "providerId": provider}
            if until is not None:
                req["until"] = until
            ex.privatePostV1StakingHistory(req)
            page = [t for g in exact(ex) for t in g["transactions"]]
            if not page:
                break
            assert len(page) <= 2
            seen += [t["transactionId"] for t in page]
            until = int(min(t["dateTime"] for t in page)) - 1
    all_ids = [t["transactionId"] for _, t in flat]
    assert sorted(seen) == sorted(all_ids) and len(seen) == len(set(seen))

    # filters: interestOnly, providerId, currency, since/until in every form, sortAsc, limit clamped
    ex.privatePostV1StakingHistory({"interestOnly": True, "providerId": other, "currency": "eth", "sortAsc": True,
                                    "limit": 1000})
    only = exact(ex)
    assert [g["providerId"] for g in only] == [other]
    asc = [t["dateTime"] for t in only[0]["transactions"]]
    assert asc == sorted(asc) and {t["transactionType"] for t in only[0]["transactions"]} == {"Interest"}
    ex.privatePostV1StakingHistory({"limit": 0})
    assert sum(len(g["transactions"]) for g in exact(ex)) == 1
    ex.privatePostV1StakingHistory({"providerId": "62b21e17-2534-4b9f-afcf-b7edb609dd8d"})
    assert exact(ex) == []
    second = sorted(asc)[1]
    iso = dt.datetime.fromtimestamp(int(second) // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for since in (iso, int(second), str(second), int(second) // 1000, str(int(second) // 1000)):
        ex.privatePostV1StakingHistory({"interestOnly": True, "providerId": other, "since": since, "until": since})
        assert [t["dateTime"] for g in exact(ex) for t in g["transactions"]] == [second], since

    # rewards: per provider and currency, periods split by the rate change, totals exact
    since = dt.datetime.fromtimestamp(0, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ex.privatePostV1StakingRewards({"since": since})
    rewards = exact(ex)
    assert set(rewards) == {pid, other} and set(rewards[pid]) == {"ETH"}
    summary = rewards[pid]["ETH"]
    assert list(summary) == ["providerId", "currency", "accrualTotal", "ratePeriods"]
    periods = summary["ratePeriods"]
    assert [(p["ratePct"], p["apyPct"]) for p in periods][:1] == [(Decimal("5.4"), Decimal("5.55"))]
    assert periods[-1]["ratePct"] == Decimal(6) and periods[-1]["apyPct"] == Decimal("6.18")
    assert summary["accrualTotal"] == sum(p["accrualTotal"] for p in periods) == paid[pid]
    assert sum(p["numberOfAccruals"] for p in periods) == len([1 for p, t in flat if p == pid
                                                               and t["transactionType"] == "Interest"])
    for p in periods:
        assert set(p) == {"providerId", "currency", "apyPct", "ratePct", "numberOfAccruals", "accrualTotal",
                          "firstAccrualAt", "lastAccrualAt"}
        assert p["firstAccrualAt"].endswith("T20:00:00.000Z") and p["lastAccrualAt"].endswith("T20:00:00.000Z")
    assert rewards[other]["ETH"]["accrualTotal"] == paid[other]
    # narrowed: one provider, and a window holding only the last accrual
    last = periods[-1]["lastAccrualAt"]
    ex.privatePostV1StakingRewards({"since": last, "providerId": pid, "currency": "ETH"})
    narrow = exact(ex)
    assert list(narrow) == [pid]
    assert narrow[pid]["ETH"]["accrualTotal"] == narrow[pid]["ETH"]["ratePeriods"][0]["accrualTotal"]
    assert narrow[pid]["ETH"]["ratePeriods"][0]["numberOfAccruals"] == 1
    with pytest.raises(ccxt.BadRequest):
        ex.privatePostV1StakingRewards({"since": last, "until": since})
    stack.audit_ok()


# -- rate limits ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # counters do not touch the database
def test_burst_queue_serves_five_late_then_refuses(fresh_stack: Callable[..., Stack]) -> None:
    # factor 0.042: public 5 per minute per IP, private 25 per minute per key
    stack = fresh_stack(rate_limit_factor=0.042)
    k = staker(stack)
    ex = ccxt_gemini(stack, k)
    rates_url = stack.base_url + "/v1/staking/rates"
    with httpx.Client(timeout=120) as client:
        assert [client.get(rates_url).status_code for _ in range(5)] == [200] * 5

    results: list[tuple[str, int, float]] = []
    refusals: list[httpx.Response] = []
    lock = threading.Lock()
    started = time.monotonic()

    def record(kind: str, r: httpx.Response) -> None:
        with lock:
            results.append((kind, r.status_code, time.monotonic() - started))
            if r.status_code != 200:
                refusals.append(r)

    def public() -> None:
        record("public", httpx.get(rates_url, timeout=120))

    def private(nonce: int) -> None:
        record("private", post(stack, k, "/v1/balances/staking", nonce=nonce, timeout=120))

    for _ in range(25):
        ok(post(stack, k, "/v1/balances/staking"))
    threads = []
    for _ in range(7):
        threads.append(threading.Thread(target=public))
        threads.append(threading.Thread(target=private, args=(next_nonce(),)))
        for t in threads[-2:]:
            t.start()
        time.sleep(0.15)  # in nonce order: each nonce is consumed before the next is sent
    time.sleep(1.0)
    early = list(results)
    # over the rate with the queue full: refused at once, the 5 queued still waiting
    assert sorted((kind, code) for kind, code, _ in early) == [("private", 429), ("private", 429),
                                                                 ("public", 429), ("public", 429)]
    for r in refusals:
        refused(r, 429, "RateLimit")
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.privatePostV1BalancesStaking()
    for t in threads:
        t.join(timeout=120)
    late = [(kind, code, at) for kind, code, at in results if code == 200]
    assert len(late) == 10 and all(at > 50 for _, _, at in late)  # served once the window freed them
    assert all(code in (200, 429) for _, code, _ in results) and len(results) == 14


# -- an unexpected failure -----------------------------------------------------------------------


def crashing(_call: Call) -> Any:
    raise RuntimeError("internal detail /srv/secret.py line 42")


@pytest.fixture
def crash_server(make_db: Callable[[str], str]) -> Iterator[tuple[str, Services]]:
    services = Services(Settings(database_url=make_db("sqlite"), server_key=new_server_key(), admin_token="t"))
    app = create_app(services, "t")
    # an adapter with one more route, installed ahead of the app's own
    crash = Route("POST", "/v1/crash", ("Trader",), private=crashing)
    gemini_app.GeminiAdapter(services, [*ALL, crash]).install(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.close()


def test_unhandled_exception_is_a_clean_system_error(crash_server: tuple[str, Services]) -> None:
    base, services = crash_server
    user = services.accounts.create_user(env="live")
    key, secret = services.gemini_keys.create_key(user.uid)
    k = Key(key.api_key, secret, user.uid)
    r = httpx.post(base + "/v1/crash", headers=signed_headers(k, payload_text("/v1/crash")))
    assert r.status_code == 500
    assert r.json() == {"result": "error", "reason": "System",
                        "message": "We are experiencing technical issues; please try again later"}
    assert "secret" not in r.text and "Traceback" not in r.text
    with pytest.raises(ccxt.ExchangeError) as raised:
        ccxt.gemini().handle_errors(500, "", "", "POST", {}, r.text, r.json(), None, None)
    assert type(raised.value) is ccxt.ExchangeError
    r = httpx.post(base + "/v1/balances/staking", headers=signed_headers(k, payload_text("/v1/balances/staking")))
    assert r.status_code == 200 and r.json() == []


# -- maintenance mode ----------------------------------------------------------------------------


def test_maintenance_mode_closes_both_apis_and_changes_nothing(fresh_stack: Callable[..., Stack]) -> None:
    """Every reason of the spec's table is reachable: 503 Maintenance while the operator has the
    API closed (ccxt: OnMaintenance). OKX answers 50001 at the same time; the admin API goes on."""
    stack = fresh_stack()
    pid = new_product(stack)
    k = staker(stack)
    ex = ccxt_gemini(stack, k)
    before = books(stack, k.uid)
    assert stack.call("PUT", "/admin/maintenance", json={"on": True}) == {"on": True}
    assert stack.call("GET", "/admin/maintenance") == {"on": True}
    with pytest.raises(ccxt.OnMaintenance):
        ex.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "1"})
    refused(httpx.get(stack.base_url + "/v1/staking/rates"), 503, "Maintenance")
    okx = httpx.get(stack.base_url + "/api/v5/public/time")
    assert (okx.status_code, okx.json()["code"]) == (503, "50001")
    assert books(stack, k.uid) == before
    assert stack.call("PUT", "/admin/maintenance", json={"on": False}) == {"on": False}
    ex.privatePostV1StakingStake({"providerId": pid, "currency": "ETH", "amount": "1"})
    assert staked(stack, k.uid) == [(pid, "ETH", Decimal(1), Decimal(0))]
    assert httpx.get(stack.base_url + "/api/v5/public/time").json()["code"] == "0"
    stack.audit_ok()
