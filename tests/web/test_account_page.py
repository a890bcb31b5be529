"""The Account page: an API key created in the browser works with python-okx; its secret is shown
once and never again; revoking it in the browser ends it for the API."""

from __future__ import annotations

import warnings

import okx.Funding as OkxFunding
from playwright.sync_api import Page, expect

from tests.stack import Stack
from tests.web.conftest import axe_serious, shot, sign_in, web_user
from tests.web.test_sign_in import csrf_of, http_sign_in

warnings.filterwarnings("ignore", category=DeprecationWarning)


def test_create_use_and_revoke_a_key(page: Page, stack: Stack) -> None:
    user = web_user(stack, funds={"USDT": "100"})
    sign_in(page, stack, user, "/account")
    page.get_by_label("Label").fill("bot-1")
    page.get_by_label("trade").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key-box")).to_be_visible()
    api_key = page.locator("#new-api-key").inner_text()
    secret = page.locator("#new-secret").inner_text()
    passphrase = page.locator("#new-passphrase").inner_text()
    shot(page, "account")
    assert axe_serious(page) == []
    client = OkxFunding.FundingAPI(api_key, secret, passphrase, False, "0", domain=stack.base_url, debug=False)
    reply = client.get_balances(ccy="USDT")
    assert reply["code"] == "0" and reply["data"][0]["availBal"] == "100", reply
    page.goto(f"{stack.base_url}/account")  # shown once: never again
    assert secret not in page.content() and passphrase not in page.content()
    expect(page.locator("#keys")).to_contain_text("bot-1")
    page.get_by_role("button", name="Revoke key bot-1").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    assert client.get_balances(ccy="USDT")["code"] == "50111"


def test_key_forms_refuse_bad_input_and_other_users_keys(stack: Stack) -> None:
    user = web_user(stack)
    other = web_user(stack)
    client = http_sign_in(stack, user)
    token = csrf_of(client.get("/account").text)
    r = client.post("/account/keys", data={"csrf": token, "perm": "admin"})
    assert r.status_code == 400 and "Permissions must be among" in r.text
    r = client.post("/account/keys", data={"csrf": token, "ips": "not-an-ip"})
    assert r.status_code == 400 and "(code " in r.text
    r = client.post("/account/keys/revoke", data={"csrf": token, "apiKey": other.creds.api_key})
    assert r.status_code == 400 and "does not exist" in r.text
    keys = stack.call("GET", f"/admin/users/{other.creds.uid}/api-keys")
    assert [k["revokedAt"] for k in keys] == [None]
    assert [k["apiKey"] for k in stack.call("GET", f"/admin/users/{user.creds.uid}/api-keys")] == [user.creds.api_key]
