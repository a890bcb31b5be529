"""The unchanged official clients against the server: python-okx 0.4.4 and ccxt.okx 4.5.90."""

from __future__ import annotations

import warnings
from decimal import Decimal

import ccxt
import okx.Account as OkxAccount
import okx.Funding as OkxFunding
import okx.PublicData as OkxPublic
import pytest

from tests.stack import Creds, Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)


def funding(stack: Stack, c: Creds) -> OkxFunding.FundingAPI:
    return OkxFunding.FundingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def account(stack: Stack, c: Creds) -> OkxAccount.AccountAPI:
    return OkxAccount.AccountAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def ccxt_okx(stack: Stack, c: Creds) -> ccxt.okx:
    ex = ccxt.okx({"apiKey": c.api_key, "secret": c.secret, "password": c.passphrase})
    if c.env == "demo":
        ex.set_sandbox_mode(True)
    ex.urls["api"]["rest"] = stack.base_url
    return ex


@pytest.mark.parametrize("env", ["demo", "live"])
def test_python_okx_balances_transfer_deposits(stack: Stack, env: str) -> None:
    c = stack.new_user(env=env, funds={"USDT": "250.5", "ETH": "1.25"})
    f = funding(stack, c)
    got = f.get_balances()
    assert got["code"] == "0"
    assert {r["ccy"]: r["availBal"] for r in got["data"]} == {"ETH": "1.25", "USDT": "250.5"}

    moved = f.funds_transfer("USDT", "100.25", "6", "18")
    assert moved["code"] == "0", moved
    trans_id = moved["data"][0]["transId"]
    assert moved["data"][0]["amt"] == "100.25"

    state = f.transfer_state(trans_id)
    assert state["data"][0]["state"] == "success" and state["data"][0]["amt"] == "100.25"

    only = f.get_balances("USDT")
    assert only["data"] == [{"ccy": "USDT", "bal": "150.25", "frozenBal": "0", "availBal": "150.25"}]

    trading = account(stack, c).get_account_balance()
    details = {d["ccy"]: d for d in trading["data"][0]["details"]}
    assert details["USDT"]["cashBal"] == "100.25" and details["USDT"]["availEq"] == ""

    back = f.funds_transfer("USDT", "0.25", "18", "6")
    assert back["code"] == "0"
    assert stack.balances(c.uid)[("18", "USDT")] == Decimal("100")

    deps = f.get_deposit_history(ccy="ETH")
    assert [(d["ccy"], d["amt"], d["state"]) for d in deps["data"]] == [("ETH", "1.25", "2")]

    currencies = f.get_currencies("ETH")
    assert currencies["code"] == "0" and currencies["data"][0]["chain"] == "ETH-ERC20"
    stack.audit_ok()


def test_python_okx_errors_come_back_as_envelopes(stack: Stack) -> None:
    c = stack.new_user(env="demo", funds={"USDT": "10"})
    f = funding(stack, c)
    over = f.funds_transfer("USDT", "10.000001", "6", "18")
    assert over["code"] == "58116" and over["data"] == []
    same = f.funds_transfer("USDT", "1", "6", "6")
    assert same["code"] == "58123"
    wrong_pass = OkxFunding.FundingAPI(c.api_key, c.secret, "not-the-passphrase", False, c.flag,
                                       domain=stack.base_url, debug=False)
    assert wrong_pass.get_balances()["code"] == "50105"
    assert stack.balances(c.uid)[("6", "USDT")] == Decimal("10")


def test_python_okx_public_time_matches_clock(stack: Stack) -> None:
    ts = int(OkxPublic.PublicAPI(flag="1", domain=stack.base_url, debug=False).get_system_time()["data"][0]["ts"])
    clock = int(stack.call("GET", "/admin/clock")["ts"])
    assert abs(ts - clock) < 5_000


@pytest.mark.parametrize("env", ["demo", "live"])
def test_ccxt_markets_balance_transfer_deposits(stack: Stack, env: str) -> None:
    c = stack.new_user(env=env, funds={"USDT": "1000", "BTC": "0.5"})
    ex = ccxt_okx(stack, c)
    markets = ex.load_markets()
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["spot"]

    assert ex.fetch_balance({"type": "funding"})["total"] == {"BTC": 0.5, "USDT": 1000.0}
    result = ex.transfer("USDT", 400, "funding", "trading")
    assert result["id"] and result["amount"] == 400.0
    trading = ex.fetch_balance()
    assert trading["USDT"]["free"] == 400.0 and trading["USDT"]["total"] == 400.0
    assert ex.fetch_balance({"type": "funding"})["USDT"]["free"] == 600.0

    deposits = ex.fetch_deposits("BTC")
    assert [(d["currency"], d["amount"], d["status"]) for d in deposits] == [("BTC", 0.5, "ok")]
    assert ex.fetch_time() > 0
    stack.audit_ok()


def test_ccxt_maps_errors(stack: Stack) -> None:
    c = stack.new_user(env="live", funds={"USDT": "5"})
    ex = ccxt_okx(stack, c)
    ex.load_markets()
    with pytest.raises(ccxt.ExchangeError):
        ex.transfer("USDT", 6, "funding", "trading")
    bad = ccxt.okx({"apiKey": c.api_key, "secret": "00" * 16, "password": c.passphrase})
    bad.urls["api"]["rest"] = stack.base_url
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()
    assert stack.balances(c.uid)[("6", "USDT")] == Decimal("5")
