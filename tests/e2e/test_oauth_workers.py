"""Two server processes on one database share OAuth state: a code issued by one is redeemed at the
other, a token refreshed at one is dead at the other at once, and a refresh token raced to both
at the same moment is honoured once (then the grant is revoked as reuse)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.api.test_oauth import CSRF, REDIRECT
from tests.stack import two_workers


def test_two_workers_share_codes_tokens_and_refreshes(make_db: Callable[[str], str], backend: str) -> None:
    with two_workers(make_db(backend)) as (a, b, call):
        broker = str(call("POST", "/admin/users", json={"env": "live", "kycLevel": 2})["uid"])
        call("PUT", f"/admin/fd-brokers/{broker}", json={"types": ["oauth"], "ratio": "0.3"})
        app = call("POST", "/admin/oauth/clients", json={"brokerUid": broker, "name": "Two Workers App",
                                                           "redirectUris": [REDIRECT]})
        uid = str(call("POST", "/admin/users", json={"env": "live", "kycLevel": 2})["uid"])
        call("POST", f"/admin/users/{uid}/deposits", json={"ccy": "USDT", "amt": "7"})
        password = secrets.token_urlsafe(12)
        call("PUT", f"/admin/users/{uid}/web-login", json={"login": "w" + uid, "password": password})

        # consent at worker A
        browser = httpx.Client(base_url=a, timeout=30)
        token = CSRF.search(browser.get("/login").text).group(1)  # type: ignore[union-attr]
        assert browser.post("/login", data={"csrf": token, "login": "w" + uid, "password": password}
                            ).status_code == 303
        page = browser.get(f"/oauth/authorize?response_type=code&client_id={app['clientId']}"
                           f"&redirect_uri={REDIRECT}&state=st").text
        q = page.split('name="q" value="')[1].split('"')[0].replace("&amp;", "&")
        r = browser.post("/oauth/authorize", data={"csrf": CSRF.search(page).group(1),  # type: ignore[union-attr]
                                                   "q": q, "decision": "approve"})
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        creds = {"client_id": str(app["clientId"]), "client_secret": str(app["clientSecret"])}

        # the code redeemed at worker B, the token used at both
        pair = httpx.post(b + "/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, **creds}).json()
        assert "access_token" in pair, pair
        for base in (a, b):
            got = httpx.get(base + "/api/v5/asset/balances", headers={
                "Authorization": f"Bearer {pair['access_token']}"}).json()
            assert got["code"] == "0" and got["data"][0]["availBal"] == "7", got

        # refreshed at A: the old token is dead at B at once
        new = httpx.post(a + "/oauth/token", data={"grant_type": "refresh_token",
                                                   "refresh_token": pair["refresh_token"], **creds}).json()
        assert httpx.get(b + "/api/v5/asset/balances", headers={
            "Authorization": f"Bearer {pair['access_token']}"}).json()["code"] == "53003"

        # the same refresh token sent to both at the same moment: one wins
        barrier = threading.Barrier(2)
        replies: list[dict[str, object]] = []
        lock = threading.Lock()

        def send(base: str) -> None:
            with httpx.Client(timeout=30) as client:
                barrier.wait()
                got = client.post(base + "/oauth/token", data={
                    "grant_type": "refresh_token", "refresh_token": new["refresh_token"], **creds}).json()
            with lock:
                replies.append(got)

        threads = [threading.Thread(target=send, args=(base,)) for base in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [x for x in replies if "access_token" in x]
        assert len(won) <= 1 and all(x.get("code") == "53005" for x in replies if "access_token" not in x), replies
        # whatever won, the grant has no two live tokens: at most one of the new ones works
        live = [x for x in won if httpx.get(a + "/api/v5/asset/balances", headers={
            "Authorization": f"Bearer {x['access_token']}"}).json()["code"] == "0"]
        assert len(live) <= 1
