"""OAuth 2.0 through a real OAuth client library (Authlib's httpx client), the consent given over
HTTP as a signed-in user, tokens used with python-okx, ccxt and raw HTTP; every 53xxx situation."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import httpx
import okx.Funding as OkxFunding
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.api.test_fd_brokers import D, down, fixed_price
from tests.stack import Stack
from tests.web.conftest import WebUser, web_user

warnings.filterwarnings("ignore", category=DeprecationWarning)
REDIRECT = "https://broker.example/callback"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class App:
    broker_uid: str
    code: str
    client_id: str
    secret: str | None
    body: dict[str, Any]


def oauth_app(stack: Stack, *, public: bool = False, fast_api: bool = False, ips: tuple[str, ...] = (),
              scopes: tuple[str, ...] = ("read_only", "trade")) -> App:
    broker = stack.new_user()
    fd = stack.call("PUT", f"/admin/fd-brokers/{broker.uid}", json={"types": ["api", "oauth"], "ratio": "0.3"})
    body = stack.call("POST", "/admin/oauth/clients", json={
        "brokerUid": broker.uid, "name": "Broker App " + broker.uid[-4:], "redirectUris": [REDIRECT],
        "scopes": list(scopes), "ips": list(ips), "fastApi": fast_api, "public": public})
    return App(broker.uid, fd["brokerCode"], body["clientId"], body.get("clientSecret"), body)


def signed_in(stack: Stack, user: WebUser) -> httpx.Client:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"csrf": token, "login": user.login, "password": user.password})
    assert r.status_code == 303, r.text
    return client


def consent(stack: Stack, browser: httpx.Client, url: str, *, approve: bool = True, fast_api: bool = False) -> str:
    """What the user's browser does on the consent page; returns the redirect's Location."""
    page = browser.get(url[len(stack.base_url):] if url.startswith(stack.base_url) else url)
    assert page.status_code == 200, page.text
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    q = re.search(r'name="q" value="([^"]*)"', page.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    data = {"csrf": csrf, "q": q, "decision": "approve" if approve else "deny"}
    if fast_api:
        data["fastApi"] = "1"
    r = browser.post("/oauth/authorize", data=data)
    assert r.status_code == 302, r.text
    return r.headers["location"]


def authorise(stack: Stack, app: App, user: WebUser, *, term_id: str = "", fast_api: bool = False,
              scope: str = "") -> tuple[OAuth2Client, dict[str, Any]]:
    """The whole code grant (with PKCE) through Authlib's client."""
    verifier = generate_token(64)
    oauth = OAuth2Client(app.client_id, app.secret, scope=scope or " ".join(app.body["scopes"]), redirect_uri=REDIRECT,
                         token_endpoint_auth_method="none" if app.secret is None else "client_secret_post",
                         code_challenge_method="S256")
    url, state = oauth.create_authorization_url(f"{stack.base_url}/oauth/authorize", code_verifier=verifier)
    location = consent(stack, signed_in(stack, user), url, fast_api=fast_api)
    assert parse_qs(urlsplit(location).query)["state"] == [state]
    token = oauth.fetch_token(f"{stack.base_url}/oauth/token", authorization_response=location,
                              code_verifier=verifier, **({"termId": term_id} if term_id else {}))
    return oauth, token


def bearer_get(stack: Stack, token: str, path: str = "/api/v5/asset/balances", **headers: str) -> dict[str, Any]:
    r = httpx.get(stack.base_url + path, headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)
    return {"status": r.status_code, **r.json()}


def test_code_grant_refresh_and_revoke_with_authlib(stack: Stack) -> None:
    app = oauth_app(stack)
    user = web_user(stack, funds={"USDT": "250"})
    oauth, token = authorise(stack, app, user)
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600 and token["refresh_token"]
    reply = bearer_get(stack, token["access_token"], "/api/v5/asset/balances?ccy=USDT")
    assert reply["code"] == "0" and reply["data"][0]["availBal"] == "250", reply
    # python-okx without keys (it then sends no OK-ACCESS-* headers), the token in its client's headers
    funding = OkxFunding.FundingAPI(flag="0", domain=stack.base_url, debug=False)
    funding.headers["Authorization"] = f"Bearer {token['access_token']}"
    assert funding.get_balances(ccy="USDT")["data"][0]["availBal"] == "250"
    # ccxt: the bearer header in the exchange's headers, requests made unsigned ("public")
    ex = ccxt.okx({"headers": {"Authorization": f"Bearer {token['access_token']}"}})
    ex.urls["api"]["rest"] = stack.base_url
    got = ex.request("asset/balances", ["public"], "GET", {"ccy": "USDT"})
    assert got["data"][0]["availBal"] == "250"

    # refresh: a new pair, and the old access token is dead at once (53003)
    old = token
    new = oauth.refresh_token(f"{stack.base_url}/oauth/token", refresh_token=old["refresh_token"])
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert bearer_get(stack, old["access_token"])["code"] == "53003"
    assert bearer_get(stack, new["access_token"])["code"] == "0"
    # the old refresh token again: 53005, and the whole grant is revoked
    r = httpx.post(f"{stack.base_url}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": old["refresh_token"], "client_id": app.client_id,
        "client_secret": app.secret})
    assert r.json()["code"] == "53005" and r.json()["error"] == "invalid_grant"
    assert bearer_get(stack, new["access_token"])["code"] == "53003"

    # a fresh grant revoked by RFC 7009: the token is dead
    _, again = authorise(stack, app, user)
    oauth.revoke_token(f"{stack.base_url}/oauth/revoke", token=again["refresh_token"])
    assert bearer_get(stack, again["access_token"])["code"] == "53003"


def test_pkce_public_client_device_binding_and_bad_verifiers(stack: Stack) -> None:
    app = oauth_app(stack, public=True)
    assert app.secret is None
    user = web_user(stack, funds={"USDT": "5"})
    device = "32cf9c63-6737-4ab5-b1ab-8858ae659185"
    _, token = authorise(stack, app, user, term_id=device)
    assert bearer_get(stack, token["access_token"])["code"] == "53006"  # no TERMID
    assert bearer_get(stack, token["access_token"], termid="another-device")["status"] == 401
    assert bearer_get(stack, token["access_token"], termid=device)["code"] == "0"

    # a wrong verifier, a missing one, and plain PKCE
    verifier = generate_token(64)
    browser = signed_in(stack, user)
    challenge = create_s256_code_challenge(verifier)
    url = (f"{stack.base_url}/oauth/authorize?response_type=code&client_id={app.client_id}&redirect_uri={REDIRECT}"
           f"&scope=read_only&state=s1&code_challenge={challenge}&code_challenge_method=S256")
    code = parse_qs(urlsplit(consent(stack, browser, url)).query)["code"][0]
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": app.client_id}
    wrong = httpx.post(f"{stack.base_url}/oauth/token", data={**base, "code_verifier": generate_token(64)}).json()
    missing = httpx.post(f"{stack.base_url}/oauth/token", data=base).json()
    assert wrong["code"] == "53010" and missing["code"] == "53011" and "code_verifier" in missing["msg"], (
        wrong, missing)
    plain = browser.get(url.replace(f"code_challenge={challenge}&code_challenge_method=S256",
                                    f"code_challenge={verifier}&code_challenge_method=plain"))
    assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]
    no_pkce = browser.get(url.replace(f"&code_challenge={challenge}&code_challenge_method=S256", ""))
    assert no_pkce.status_code == 302 and "error=invalid_request" in no_pkce.headers["location"]


def test_codes_are_single_use_and_redirects_exact(stack: Stack) -> None:
    app = oauth_app(stack)
    user = web_user(stack)
    browser = signed_in(stack, user)
    url = (f"{stack.base_url}/oauth/authorize?response_type=code&client_id={app.client_id}"
           f"&redirect_uri={REDIRECT}&scope=read_only%20trade&state=xyz")
    code = parse_qs(urlsplit(consent(stack, browser, url)).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": app.client_id,
            "client_secret": app.secret}
    first = httpx.post(f"{stack.base_url}/oauth/token", data=form).json()
    assert "access_token" in first
    reused = httpx.post(f"{stack.base_url}/oauth/token", data=form).json()
    assert reused["code"] == "53012" and reused["error"] == "invalid_grant"
    assert bearer_get(stack, first["access_token"])["code"] == "53003"  # the reuse revoked what the code issued
    # an unregistered redirect: an error page, no redirect to it
    r = browser.get(url.replace(REDIRECT, "https://evil.example/cb"))
    assert r.status_code == 400 and "53016" in r.text
    # unknown client, wrong secret
    bad = httpx.post(f"{stack.base_url}/oauth/token", data={**form, "client_secret": "nope"}).json()
    assert bad["code"] == "53009" and bad["error"] == "invalid_client"
    r = browser.get(url.replace(app.client_id, "0" * 32))
    assert r.status_code == 400 and "53009" in r.text
    # scope beyond the client's
    narrow = oauth_app(stack, scopes=("read_only",))
    r = browser.get(url.replace(app.client_id, narrow.client_id))
    assert r.status_code == 302 and "error=invalid_scope" in r.headers["location"]
    # overlong parameters
    long = httpx.post(f"{stack.base_url}/oauth/token", data={**form, "code": "x" * 200}).json()
    assert long["code"] == "53015" and "code" in long["msg"]
    # denied consent
    denied = consent(stack, browser, url, approve=False)
    assert "error=access_denied" in denied and "state=xyz" in denied


def test_token_rules_on_the_okx_surface(stack: Stack, fresh_stack: Callable[..., Stack]) -> None:
    app = oauth_app(stack, ips=("10.9.8.7",))
    user = web_user(stack)
    _, token = authorise(stack, app, user)
    assert bearer_get(stack, token["access_token"])["code"] == "53014"  # not from the broker's server
    open_app = oauth_app(stack)
    _, token = authorise(stack, open_app, user)
    access = token["access_token"]
    assert bearer_get(stack, access)["code"] == "0"
    both = httpx.get(stack.base_url + "/api/v5/asset/balances", headers={
        "Authorization": f"Bearer {access}", "OK-ACCESS-KEY": user.creds.api_key}).json()
    assert both["code"] == "53009"
    assert bearer_get(stack, "not-a-token")["code"] == "53000"
    assert bearer_get(stack, access, "/api/v5/broker/nd/info")["code"] == "53013"
    r = httpx.post(stack.base_url + "/api/v5/asset/withdrawal", json={"ccy": "USDT", "amt": "1"},
                   headers={"Authorization": f"Bearer {access}"}).json()
    assert r["code"] == "53013"
    read_only = oauth_app(stack, scopes=("read_only",))
    _, ro = authorise(stack, read_only, user)
    r = httpx.post(stack.base_url + "/api/v5/trade/order", headers={"Authorization": f"Bearer {ro['access_token']}"},
                   json={"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "1"}).json()
    assert r["code"] == "53013"
    # the user revokes the app on the Account page: 53001
    browser = signed_in(stack, user)
    page = browser.get("/account").text
    grant_ids = re.findall(r'name="grantId" value="(\d+)"', page)
    assert grant_ids
    for gid in grant_ids:
        assert browser.post("/account/apps/revoke", data={"csrf": CSRF.search(page).group(1),  # type: ignore
                                                          "grantId": gid}).status_code == 303
    assert bearer_get(stack, access)["code"] == "53001"
    # a frozen user: 53004
    other = web_user(stack)
    _, t2 = authorise(stack, open_app, other)
    stack.call("POST", f"/admin/users/{other.creds.uid}/freeze", json={"functions": []})
    assert bearer_get(stack, t2["access_token"])["code"] == "53004"

    # lifetimes over the sandbox clock: 1 h access, 3 d refresh
    timed = fresh_stack()
    timed.call("POST", "/admin/clock/freeze")
    tapp = oauth_app(timed)
    tuser = web_user(timed)
    oauth, tok = authorise(timed, tapp, tuser)
    timed.call("POST", "/admin/clock/advance", json={"seconds": 3601})
    assert bearer_get(timed, tok["access_token"])["code"] == "53002"
    fresh = oauth.refresh_token(f"{timed.base_url}/oauth/token", refresh_token=tok["refresh_token"])
    assert bearer_get(timed, fresh["access_token"])["code"] == "0"
    timed.call("POST", "/admin/clock/advance", json={"days": 3, "seconds": 1})
    late = httpx.post(f"{timed.base_url}/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": fresh["refresh_token"], "client_id": tapp.client_id,
        "client_secret": tapp.secret}).json()
    assert late["code"] == "53005"
    # a code older than 10 minutes: 53012
    url = (f"{timed.base_url}/oauth/authorize?response_type=code&client_id={tapp.client_id}"
           f"&redirect_uri={REDIRECT}&scope=read_only&state=old")
    code = parse_qs(urlsplit(consent(timed, signed_in(timed, tuser), url)).query)["code"][0]
    timed.call("POST", "/admin/clock/advance", json={"seconds": 601})
    aged = httpx.post(f"{timed.base_url}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": tapp.client_id,
        "client_secret": tapp.secret}).json()
    assert aged["code"] == "53012"


def test_fast_api_key_once_and_orders_attributed(stack: Stack) -> None:
    app = oauth_app(stack, fast_api=True, ips=("127.0.0.1",))
    user = web_user(stack, funds={"USDT": "1000"})
    _, token = authorise(stack, app, user, fast_api=True)
    access = token["access_token"]
    r = httpx.post(stack.base_url + "/api/v5/users/oauth/fast-api-key", headers={"Authorization": f"Bearer {access}"},
                   json={}).json()
    assert r["code"] == "0", r
    key = r["data"][0]
    assert key["perm"] == "read_only,trade" and key["ip"] == "127.0.0.1"
    funding = OkxFunding.FundingAPI(key["apiKey"], key["secretKey"], key["passphrase"], False, "0",
                                    domain=stack.base_url, debug=False)
    assert funding.get_balances(ccy="USDT")["data"][0]["availBal"] == "1000"
    again = httpx.post(stack.base_url + "/api/v5/users/oauth/fast-api-key",
                       headers={"Authorization": f"Bearer {access}"}, json={}).json()
    assert again["code"] == "53017"
    plain = oauth_app(stack)
    _, t2 = authorise(stack, plain, user)
    none = httpx.post(stack.base_url + "/api/v5/users/oauth/fast-api-key",
                      headers={"Authorization": f"Bearer {t2['access_token']}"}, json={}).json()
    assert none["code"] == "53017"
    keys = stack.call("GET", f"/admin/users/{user.creds.uid}/api-keys")
    assert key["apiKey"] in {k["apiKey"] for k in keys}
    # a second consent to the same app: a second key, its label numbered (labels stay unique)
    _, again = authorise(stack, app, user, fast_api=True)
    second = httpx.post(stack.base_url + "/api/v5/users/oauth/fast-api-key",
                        headers={"Authorization": f"Bearer {again['access_token']}"}, json={}).json()["data"][0]
    labels = {k["apiKey"]: k["label"] for k in stack.call("GET", f"/admin/users/{user.creds.uid}/api-keys")}
    assert labels[second["apiKey"]] == labels[key["apiKey"]] + " 2"


def test_orders_placed_with_a_token_earn_the_oauth_broker_its_rebate(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()  # moves the clock
    app = oauth_app(stack)
    user = web_user(stack, funds={"USDT": "50000"})
    _, token = authorise(stack, app, user)
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    moved = httpx.post(stack.base_url + "/api/v5/asset/transfer", headers=auth, json={
        "ccy": "USDT", "amt": "50000", "from": "6", "to": "18"}).json()
    assert moved["code"] == "0", moved
    fixed_price(stack, "BTC-USDT", "60000")
    placed = httpx.post(stack.base_url + "/api/v5/trade/order", headers=auth, json={
        "instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "0.01",
        "tgtCcy": "base_ccy", "tag": app.code}).json()
    assert placed["code"] == "0", placed
    fill = next(f for f in stack.call("GET", f"/admin/users/{user.creds.uid}/fills")
                if f["ordId"] == placed["data"][0]["ordId"])
    before = stack.balances(app.broker_uid).get(("6", "USDT"), D(0))
    stack.call("POST", "/admin/clock/advance", json={"days": 1})
    records = stack.call("GET", f"/admin/fd-brokers/{app.broker_uid}/rebates")
    assert [(r["uid"], r["brokerType"]) for r in records] == [(user.creds.uid, "oauth")], records
    earned = down(D("0.3") * D(fill["netFeeUsdt"]))
    assert earned > 0 and stack.balances(app.broker_uid)[("6", "USDT")] == before + earned
    stack.audit_ok()


def test_metadata_document(stack: Stack) -> None:
    meta = httpx.get(stack.base_url + "/.well-known/oauth-authorization-server").json()
    assert meta["token_endpoint"].endswith("/oauth/token") and meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}


def test_a_user_cannot_revoke_another_users_app(stack: Stack) -> None:
    app = oauth_app(stack)
    owner, other = web_user(stack), web_user(stack)
    _, token = authorise(stack, app, owner)
    page = signed_in(stack, owner).get("/account").text
    grant_id = re.findall(r'name="grantId" value="(\d+)"', page)[0]
    intruder = signed_in(stack, other)
    csrf = CSRF.search(intruder.get("/account").text).group(1)  # type: ignore[union-attr]
    for value in (grant_id, "1e3", "", "9" * 13):
        r = intruder.post("/account/apps/revoke", data={"csrf": csrf, "grantId": value})
        assert r.status_code in (400, 404), (value, r.status_code)
    assert bearer_get(stack, token["access_token"])["code"] == "0"  # the owner's app still works
