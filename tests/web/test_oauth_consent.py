"""The OAuth consent page in Chromium: sign-in inside the flow, approve (the redirect carries
``code`` and ``state``; Authlib's client exchanges the code), deny, and revoking the app on the
Account page."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from playwright.sync_api import Page, Route, expect

from tests.api.test_fd_brokers import fixed_price
from tests.api.test_oauth import REDIRECT, authorise, oauth_app
from tests.stack import Creds, Stack
from tests.web.conftest import WebUser, axe_serious, shot, sign_in, web_user


def catch_redirects(page: Page) -> list[str]:
    """The app's redirect URI answered inside the browser (there is no network): its URLs kept."""
    seen: list[str] = []

    def fulfil(route: Route) -> None:
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>app</title><p>back at the app")

    page.route("https://broker.example/**", fulfil)
    return seen


def test_sign_in_inside_the_flow_then_approve(page: Page, stack: Stack) -> None:
    app = oauth_app(stack, fast_api=True)
    user = web_user(stack, funds={"USDT": "42"})
    seen = catch_redirects(page)
    verifier = generate_token(64)
    oauth = OAuth2Client(app.client_id, app.secret, scope="read_only trade", redirect_uri=REDIRECT,
                         token_endpoint_auth_method="client_secret_post", code_challenge_method="S256")
    url, state = oauth.create_authorization_url(f"{stack.base_url}/oauth/authorize", code_verifier=verifier)
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login\?next=%2Foauth%2Fauthorize"))
    page.get_by_label("Login").fill(user.login)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(app.body["name"])
    expect(page.locator("#scopes")).to_contain_text("trade")
    expect(page.get_by_label(re.compile("Also create an API key"))).to_be_checked()
    shot(page, "consent")
    assert axe_serious(page) == []
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url("https://broker.example/**")
    query = parse_qs(urlsplit(seen[-1]).query)
    assert query["state"] == [state] and query["code"]
    token = oauth.fetch_token(f"{stack.base_url}/oauth/token", authorization_response=seen[-1],
                              code_verifier=verifier)
    got = httpx.get(stack.base_url + "/api/v5/asset/balances?ccy=USDT",
                    headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert got["data"][0]["availBal"] == "42"

    # the Account page lists the app and its Fast API key; revoking it ends the token (53001)
    page.goto(stack.base_url + "/account")
    apps = page.locator("#apps")
    expect(apps).to_contain_text(app.body["name"])
    fast_key = httpx.post(stack.base_url + "/api/v5/users/oauth/fast-api-key",
                          headers={"Authorization": f"Bearer {token['access_token']}"}, json={}).json()
    expect(apps).to_contain_text(fast_key["data"][0]["apiKey"])
    page.get_by_role("button", name=f"Revoke access of {app.body['name']}").click()
    expect(page.get_by_role("status")).to_contain_text("Access revoked")
    again = httpx.get(stack.base_url + "/api/v5/asset/balances",
                      headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert again["code"] == "53001"
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_deny_sends_the_user_back_with_access_denied(page: Page, stack: Stack) -> None:
    app = oauth_app(stack)
    user = web_user(stack)
    seen = catch_redirects(page)
    sign_in(page, stack, user)
    page.goto(f"{stack.base_url}/oauth/authorize?response_type=code&client_id={app.client_id}"
              f"&redirect_uri={REDIRECT}&scope=read_only&state=abc123")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url("https://broker.example/**")
    query = parse_qs(urlsplit(seen[-1]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["abc123"] and "code" not in query
    # an unregistered redirect URI: an error page here, never a redirect there
    page.goto(f"{stack.base_url}/oauth/authorize?response_type=code&client_id={app.client_id}"
              f"&redirect_uri=https://evil.example/cb&state=abc123")
    expect(page.get_by_role("heading", level=1)).to_contain_text("cannot be used")
    expect(page.locator("main")).to_contain_text("53016")
    assert len(seen) == 1


def test_the_fd_broker_page_shows_its_clients_and_users(page: Page, fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock: the daily FD run attributes the token's order
    app = oauth_app(stack)
    broker = WebUser(Creds(app.broker_uid, "live", "", "", ""), "fd" + app.broker_uid, "fd-broker-password")
    stack.call("PUT", f"/admin/users/{app.broker_uid}/web-login", json={"login": broker.login,
                                                                         "password": broker.password})
    user = web_user(stack, funds={"USDT": "50000"})
    _, token = authorise(stack, app, user)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.post(stack.base_url + "/api/v5/asset/transfer", headers=auth, json={
        "ccy": "USDT", "amt": "50000", "from": "6", "to": "18"}).json()["code"] == "0"
    fixed_price(stack, "BTC-USDT", "60000")
    placed = httpx.post(stack.base_url + "/api/v5/trade/order", headers=auth, json={
        "instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "0.01",
        "tgtCcy": "base_ccy", "tag": app.code}).json()
    assert placed["code"] == "0", placed
    stack.call("POST", "/admin/clock/advance", json={"days": 1})

    sign_in(page, stack, broker, "/account")
    page.goto(stack.base_url + "/broker")
    expect(page).to_have_url(f"{stack.base_url}/broker/fd")  # an FD broker that is not an ND broker
    expect(page.locator("#fd-code")).to_contain_text(app.code)
    expect(page.locator("#clients")).to_contain_text(app.client_id)
    assert app.secret is not None and app.secret not in page.content()
    expect(page.locator("#fd-users")).to_contain_text(user.creds.uid)
    expect(page.locator("#fd-users")).to_contain_text("oauth")
    assert axe_serious(page) == []
    shot(page, "broker-fd")
    # a user that is not an FD broker
    other = web_user(stack)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, stack, other, "/account")
    response = page.goto(stack.base_url + "/broker/fd")
    assert response is not None and response.status == 403
