"""Sign-in, sessions, CSRF, security headers and error pages (oauth-and-web.md section 1).

HTTP-level checks use httpx (fast, exact status codes); what a person does goes through Chromium.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from stakehouse.accounts.logins import IDLE, LoginService
from stakehouse.clock import wall_time
from tests.stack import ADMIN_TOKEN, Stack
from tests.web.conftest import WebUser, axe_serious, shot, web_user

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


def http_sign_in(stack: Stack, user: WebUser) -> httpx.Client:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"csrf": token, "login": user.login, "password": user.password, "next": "/earn"})
    assert r.status_code == 303 and r.headers["location"] == "/earn", r.text
    return client


def test_sign_in_and_out_in_the_browser(page: Page, stack: Stack) -> None:
    user = web_user(stack)
    page.goto(f"{stack.base_url}/account")  # not signed in: sent to the sign-in page, then back
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount"))
    shot(page, "sign-in")
    assert axe_serious(page) == []
    page.get_by_label("Login").fill(user.login)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{stack.base_url}/account")
    expect(page.get_by_text(user.creds.uid).first).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "sh_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{stack.base_url}/login")
    page.goto(f"{stack.base_url}/earn")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fearn"))
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_wrong_password_and_unknown_login_get_one_message(page: Page, stack: Stack) -> None:
    user = web_user(stack)
    for login, password in ((user.login, user.password + "x"), ("nobody-" + user.login, user.password)):
        page.goto(f"{stack.base_url}/login")
        page.get_by_label("Login").fill(login)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("The login or the password is wrong.")
        assert user.password not in page.content()
    assert not any(c["name"] == "sh_session" for c in page.context.cookies())


def test_a_frozen_user_cannot_sign_in_and_a_frozen_session_ends(stack: Stack) -> None:
    user = web_user(stack)
    client = http_sign_in(stack, user)
    assert client.get("/earn").status_code == 200
    stack.call("POST", f"/admin/users/{user.creds.uid}/freeze", json={"functions": []})
    r = client.get("/earn")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fearn&expired=1")
    fresh = httpx.Client(base_url=stack.base_url, timeout=30)
    token = csrf_of(fresh.get("/login").text)
    r = fresh.post("/login", data={"csrf": token, "login": user.login, "password": user.password})
    assert r.status_code == 403 and "frozen" in r.text and "sh_session" not in r.cookies


def test_a_sub_account_signs_in_with_its_own_login(stack: Stack) -> None:
    master = stack.new_user()
    sub = stack.call("POST", f"/admin/users/{master.uid}/sub-accounts", json={"subAcct": "websub" + master.uid[-6:]})
    stack.call("PUT", f"/admin/users/{sub['uid']}/web-login", json={"login": "s" + sub["uid"], "password": "p" * 12})
    client = http_sign_in(stack, WebUser(master, "s" + sub["uid"], "p" * 12))
    assert sub["uid"] in client.get("/account").text


def test_csrf_missing_foreign_or_replayed_is_refused_and_changes_nothing(stack: Stack) -> None:
    user = web_user(stack, funds={"ETH": "1"})
    client = http_sign_in(stack, user)
    token = csrf_of(client.get("/earn").text)
    other = http_sign_in(stack, web_user(stack))
    foreign = csrf_of(other.get("/earn").text)
    for data in ({"amt": "0.5"}, {"amt": "0.5", "csrf": ""}, {"amt": "0.5", "csrf": foreign},
                 {"amt": "0.5", "csrf": token[:-1] + ("A" if token[-1] != "A" else "B")}):
        r = client.post("/earn/ETH/purchase", data=data)
        assert r.status_code == 403 and "no longer valid" in r.text
    client.post("/logout", data={"csrf": token})  # the session ends: its token with it
    again = http_sign_in(stack, user)
    r = again.post("/earn/ETH/purchase", data={"amt": "0.5", "csrf": token})
    assert r.status_code == 403
    assert stack.balances(user.creds.uid)[("6", "ETH")] == 1  # nothing was bought


def test_sign_in_form_needs_its_csrf_token(stack: Stack) -> None:
    user = web_user(stack)
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    client.get("/login")
    r = client.post("/login", data={"login": user.login, "password": user.password})
    assert r.status_code == 403 and "sh_session" not in r.cookies


def test_repeated_wrong_passwords_are_throttled(fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack(rate_limit_factor=1.0)
    user = web_user(stack)
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    token = csrf_of(client.get("/login").text)
    codes = [client.post("/login", data={"csrf": token, "login": user.login, "password": "wrong-password"}).status_code
             for _ in range(6)]
    assert codes == [401] * 5 + [429]
    # the right password is refused too while the login is throttled (no hash is even tried)
    r = client.post("/login", data={"csrf": token, "login": user.login, "password": user.password})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text


def test_idle_and_absolute_expiry(stack: Stack) -> None:
    """Sessions run on wall time (not the sandbox clock): a service on a later 'now' sees them end."""
    user = web_user(stack)
    svc = stack.services.logins
    token, session = svc.open_session(user.creds.uid)
    assert svc.session(token) is not None
    later = LoginService(svc.db, svc.accounts, lambda: wall_time() + IDLE + dt.timedelta(seconds=1))
    assert later.session(token) is None
    much_later = LoginService(svc.db, svc.accounts, lambda: session.expires_at)
    assert much_later.session(token) is None
    svc.end_session(token)
    assert svc.session(token) is None


def test_pages_carry_security_headers_and_errors_show_no_trace(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    for path in ("/login", "/console/login", "/static/style.css"):
        r = client.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/login").headers["cache-control"] == "no-store"
    r = client.get("/static/../../config.py")
    assert r.status_code == 404 and "server_key" not in r.text
    r = client.post("/login", content=b"\xff" * 20000, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and "Traceback" not in r.text
    files = client.post("/login", files={"f": ("a.txt", b"x")}, data={"login": "a"})
    assert files.status_code == 400 and "files are not accepted" in files.text


def test_open_redirects_are_not_followed(stack: Stack) -> None:
    user = web_user(stack)
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"csrf": token, "login": user.login, "password": user.password,
                                    "next": "//evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/earn"


def test_an_operator_session_is_not_a_user(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    token = csrf_of(client.get("/console/login").text)
    assert client.post("/console/login", data={"csrf": token, "token": ADMIN_TOKEN}).status_code == 303
    r = client.get("/earn")
    assert r.status_code == 403 and "operator console" in r.text
    assert client.get("/console").status_code == 200  # still signed in
    wrong = httpx.Client(base_url=stack.base_url, timeout=30)
    token = csrf_of(wrong.get("/console/login").text)
    r = wrong.post("/console/login", data={"csrf": token, "token": "not-the-token"})
    assert r.status_code == 401 and "sh_session" not in r.cookies


@pytest.mark.parametrize("path", ["/earn", "/account", "/broker", "/console"])
def test_pages_need_a_session(stack: Stack, path: str) -> None:
    r = httpx.get(stack.base_url + path, timeout=30)
    assert r.status_code == 303 and "/login?next=" in r.headers["location"]
