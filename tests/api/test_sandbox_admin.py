"""Operator surface over HTTP: clock, key expiry over the sandbox clock, freezes, audit."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from decimal import Decimal

import httpx

from tests.stack import Creds, Stack


def signed_get(base_url: str, c: Creds, path: str) -> httpx.Response:
    ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sign = base64.b64encode(hmac.new(c.secret.encode(), f"{ts}GET{path}".encode(), hashlib.sha256).digest()).decode()
    headers = {"OK-ACCESS-KEY": c.api_key, "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
               "OK-ACCESS-PASSPHRASE": c.passphrase}
    if c.env == "demo":
        headers["x-simulated-trading"] = "1"
    return httpx.get(base_url + path, headers=headers)


def test_admin_needs_the_token(stack: Stack) -> None:
    assert httpx.get(stack.base_url + "/admin/clock").status_code == 401
    assert httpx.get(stack.base_url + "/admin/clock", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_key_expires_after_14_idle_days_on_the_sandbox_clock(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    idle = stack.new_user(env="live")
    bound = stack.new_user(env="live", ips=("127.0.0.1",))
    reader = stack.new_user(env="live", perms=("read_only",))
    demo = stack.new_user(env="demo")
    assert signed_get(stack.base_url, idle, "/api/v5/asset/balances").json()["code"] == "0"
    ran = stack.call("POST", "/admin/clock/advance", json={"days": 13})["jobsRun"]
    expiry = [j for j in ran if j["job"] == "api_key_expiry"]
    assert len(expiry) == 13 * 24
    assert {j["job"] for j in ran} - {"api_key_expiry"} == {  # the daily staking runs of 13 days
        "staking_rewards:ETH", "staking_rewards:SOL", "staking_settlement:ETH", "staking_settlement:SOL",
        "provider_interest", "provider_settlement", "market", "nd_rebates",  # the market's steps, the rebates
        "dcd_listing"}  # the daily DCD products
    # a call restarts the idle time
    assert signed_get(stack.base_url, idle, "/api/v5/asset/balances").json()["code"] == "0"
    stack.call("POST", "/admin/clock/advance", json={"days": 15})
    expired = signed_get(stack.base_url, idle, "/api/v5/asset/balances")
    assert (expired.status_code, expired.json()["code"]) == (401, "50111")
    for still_valid in (bound, reader, demo):
        assert signed_get(stack.base_url, still_valid, "/api/v5/asset/balances").json()["code"] == "0"
    keys = stack.call("GET", f"/admin/users/{idle.uid}/api-keys", params={"includeRevoked": True})
    assert keys[0]["revokeReason"] == "expired"


def test_freeze_transfer_function(stack: Stack) -> None:
    c = stack.new_user(funds={"USDT": "3"})
    stack.call("POST", f"/admin/users/{c.uid}/freeze", json={"functions": ["transfer"]})
    from tests.api.test_clients import funding

    refused = funding(stack, c).funds_transfer("USDT", "1", "6", "18")
    assert refused["code"] == "58004"
    stack.call("POST", f"/admin/users/{c.uid}/unfreeze", json={"functions": ["transfer"]})
    assert funding(stack, c).funds_transfer("USDT", "1", "6", "18")["code"] == "0"
    assert stack.balances(c.uid)[("18", "USDT")] == Decimal("1")
    bad = stack.admin.post(f"/admin/users/{c.uid}/freeze", json={"functions": ["teleport"]})
    assert bad.status_code == 400


def test_sub_account_transfers(stack: Stack) -> None:
    master = stack.new_user(funds={"USDT": "50"})
    sub = stack.call("POST", f"/admin/users/{master.uid}/sub-accounts", json={"subAcct": f"s{master.uid[-10:]}"})
    from tests.api.test_clients import funding

    f = funding(stack, master)
    sent = f.funds_transfer("USDT", "20", "6", "6", type="1", subAcct=sub["subAcct"])
    assert sent["code"] == "0", sent
    sub_key = stack.add_key(sub["uid"], env="live")
    back = funding(stack, sub_key).funds_transfer("USDT", "5", "6", "6", type="3")
    assert back["code"] == "0", back
    assert funding(stack, sub_key).funds_transfer("USDT", "1", "6", "6", type="1", subAcct="x")["code"] == "58128"
    assert f.funds_transfer("USDT", "1", "6", "6", type="3")["code"] == "58127"
    assert f.funds_transfer("USDT", "1", "6", "6", type="1", subAcct="nosuchsub")["code"] == "58115"
    assert stack.balances(master.uid)[("6", "USDT")] == Decimal("35")
    assert stack.balances(sub["uid"])[("6", "USDT")] == Decimal("15")
    stack.audit_ok()


def test_production_refuses_to_move_the_clock(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(sandbox=False)
    r = stack.admin.post("/admin/clock/advance", json={"days": 1})
    assert r.status_code == 403


def test_health_metrics_openapi(stack: Stack) -> None:
    assert httpx.get(stack.base_url + "/healthz").json()["status"] == "ok"
    assert "stakehouse_http_requests_total" in httpx.get(stack.base_url + "/metrics").text
    assert "/admin/users" in httpx.get(stack.base_url + "/admin/openapi.json").json()["paths"]


def test_journal_shows_a_users_postings_newest_first(stack: Stack) -> None:
    c = stack.new_user(funds={"USDT": "7.5"})
    from tests.api.test_clients import funding

    assert funding(stack, c).funds_transfer("USDT", "2.5", "6", "18")["code"] == "0"
    rows = stack.call("GET", f"/admin/users/{c.uid}/journal")
    assert [(r["type"], r["acctType"], r["amount"]) for r in rows] == [
        ("transfer", "6", "-2.5"), ("transfer", "18", "2.5"), ("deposit", "6", "7.5")]
    assert stack.call("GET", f"/admin/users/{c.uid}/journal", params={"limit": 1})[0]["amount"] == "-2.5"
    assert stack.admin.get("/admin/users/1/journal").status_code == 404
