"""The operator console (/console): clock, users, staking rates, prices, access and accessibility."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.stack import Stack
from tests.web.conftest import axe_serious, operator_sign_in, shot, sign_in, web_user


def business_time(stack: Stack) -> dt.datetime:
    return dt.datetime.fromisoformat(stack.call("GET", "/admin/clock")["now"])


def test_console_advances_the_sandbox_clock(page: Page, fresh_stack: Callable[..., Stack]) -> None:
    st = fresh_stack()
    operator_sign_in(page, st)
    expect(page.get_by_role("heading", name="Operator console")).to_be_visible()
    expect(page.locator("#audit-status")).to_contain_text("checks pass")
    before = business_time(st)

    # Out of bounds: refused beside the form, the clock stays.
    page.get_by_label("Advance by").fill("91")
    page.get_by_label("Unit").select_option("days")
    page.get_by_role("button", name="Advance the clock").click()
    expect(page.get_by_role("alert")).to_contain_text("Advance by must be a whole number from 1 to 90")
    assert business_time(st) - before < dt.timedelta(hours=1)
    page.console_errors.clear()  # type: ignore[attr-defined]  # the browser logs the 400 of the refusal

    page.get_by_label("Advance by").fill("1")
    page.get_by_label("Unit").select_option("days")
    page.get_by_role("button", name="Advance the clock").click()
    page.wait_for_url(re.compile(r".*/console\?done=advance.*"), timeout=60_000)  # app.js goes there when done
    expect(page.get_by_role("status")).to_contain_text("The clock moved ahead 1 day;")
    after = business_time(st)
    assert after - before >= dt.timedelta(days=1)
    expect(page.locator("#business-time")).to_contain_text(after.strftime("%Y-%m-%d"))
    runs = st.call("GET", "/admin/jobs?limit=5")
    assert runs, "advancing a day runs the daily jobs"
    expect(page.locator("#job-runs")).to_contain_text(runs[0]["job"])
    expect(page.locator("#job-runs")).not_to_contain_text("No job has run yet")
    shot(page, "console")
    assert axe_serious(page) == []

    # A longer advance: the page comes back at once and shows its progress until it is done.
    page.get_by_label("Advance by").fill("20")
    page.get_by_role("button", name="Advance the clock").click()
    expect(page.locator("#advance-bar")).to_be_visible()
    expect(page.locator("#advance")).to_contain_text("Advancing 20 days")
    progress = page.request.get(f"{st.base_url}/console/clock/progress").json()
    assert progress["label"] == "20 days" and progress["total"] == 20 * 86400
    page.wait_for_url(re.compile(r".*/console\?done=advance.*"), timeout=120_000)
    expect(page.get_by_role("status")).to_contain_text("The clock moved ahead 20 days;")
    assert business_time(st) - after >= dt.timedelta(days=20)
    done = page.request.get(f"{st.base_url}/console/clock/progress").json()
    assert done["done"] and not done["running"] and done["runs"] > 20 and done["progress"] == done["total"]
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_console_sets_kyc_freezes_and_sets_a_web_login(page: Page, stack: Stack) -> None:
    uid = stack.new_user(kyc=1).uid
    operator_sign_in(page, stack)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("UID").fill(uid)
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#user-kyc")).to_have_text("1")
    assert axe_serious(page) == []

    page.get_by_label("KYC level").select_option("3")
    page.get_by_role("button", name="Set KYC level").click()
    expect(page.get_by_role("status")).to_contain_text("KYC level set")
    expect(page.locator("#user-kyc")).to_have_text("3")
    assert stack.call("GET", f"/admin/users/{uid}")["kycLevel"] == 3

    page.get_by_role("button", name="Freeze the account").click()
    expect(page.get_by_role("status")).to_contain_text("Account frozen")
    expect(page.locator("#user-frozen")).to_contain_text("yes")
    assert stack.call("GET", f"/admin/users/{uid}")["frozen"] is True
    page.get_by_role("button", name="Unfreeze the account").click()
    expect(page.locator("#user-frozen")).to_have_text("no")
    assert stack.call("GET", f"/admin/users/{uid}")["frozen"] is False

    # A refused login shows the service's message and sets nothing.
    page.get_by_label("Login").fill("Bad Name")
    page.get_by_label("New password").fill("long-enough-password")
    page.get_by_role("button", name="Set login and password").click()
    expect(page.get_by_role("alert")).to_contain_text("login")
    expect(page.locator("#user-login")).to_have_text("none")
    login = f"op{uid[-8:]}"
    page.get_by_label("Login").fill(login)
    page.get_by_label("New password").fill("long-enough-password")
    page.get_by_role("button", name="Set login and password").click()
    expect(page.locator("#user-login")).to_have_text(login)
    assert stack.services.logins.login_of(uid) == login
    assert axe_serious(page) == []


def test_console_is_for_operators_only(page: Page, stack: Stack) -> None:
    user = web_user(stack)
    sign_in(page, stack, user)
    response = page.goto(f"{stack.base_url}/console/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.context.clear_cookies()
    page.goto(f"{stack.base_url}/console/staking")
    page.wait_for_url(re.compile(r".*/console/login\?next=%2Fconsole%2Fstaking"))
    expect(page.get_by_label("Admin token")).to_be_visible()


def test_console_publishes_a_rate_and_sets_a_price(page: Page, fresh_stack: Callable[..., Stack]) -> None:
    st = fresh_stack()
    st.call("POST", "/admin/clock/freeze")  # no minute passes: the pinned price stays the latest
    product = st.call("GET", "/admin/staking/products")[0]["product"]
    operator_sign_in(page, st)

    page.get_by_role("link", name="Staking").click()
    card = page.locator(f"#product-{product}")
    expect(card).to_be_visible()
    assert axe_serious(page) == []
    before = st.call("GET", f"/admin/staking/products/{product}/rates?days=1")
    for bad in ("1e5", "-1", "0.1234567890123456789"):
        card.get_by_label("APY").fill(bad)
        card.get_by_role("button", name=f"Publish the {product} rate").click()
        expect(page.get_by_role("alert")).to_be_visible()
        card = page.locator(f"#product-{product}")
    assert st.call("GET", f"/admin/staking/products/{product}/rates?days=1") == before
    card.get_by_label("APY").fill("0.0312")
    card.get_by_role("button", name=f"Publish the {product} rate").click()
    expect(page.get_by_role("status")).to_contain_text("Rate published")
    expect(page.locator(f"#apy-{product}")).to_contain_text("0.0312")
    assert st.call("GET", f"/admin/staking/products/{product}/rates?days=1")[0]["rate"].startswith("0.0312")

    page.get_by_role("link", name="Prices and DCD").click()
    expect(page.locator("#dcd-series")).to_be_visible()
    assert axe_serious(page) == []
    inst = st.call("GET", "/admin/markets")[0]["instId"]
    page.get_by_label("Instrument").select_option(inst)
    page.get_by_label("Index price", exact=True).fill("12345.5")
    page.get_by_role("button", name="Set the price").click()
    expect(page.get_by_role("status")).to_contain_text("Index price set")
    expect(page.locator(f"#px-{inst}")).to_have_text("12345.5")
    for bad in ("1e5", "-1", "0.1234567890123456789"):
        page.get_by_label("Instrument").select_option(inst)
        page.get_by_label("Index price", exact=True).fill(bad)
        page.get_by_role("button", name="Set the price").click()
        expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator(f"#px-{inst}")).to_have_text("12345.5")
    assert {m["instId"]: m["px"] for m in st.call("GET", "/admin/markets")}[inst] == "12345.5"


def test_console_has_no_clock_form_in_production(page: Page, fresh_stack: Callable[..., Stack]) -> None:
    st = fresh_stack(sandbox=False)
    operator_sign_in(page, st)
    expect(page.locator("#business-time")).to_be_visible()
    expect(page.get_by_role("button", name="Advance the clock")).to_have_count(0)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    before = business_time(st)
    response = page.request.post(f"{st.base_url}/console/clock/advance",
                                 form={"csrf": csrf or "", "amount": "1", "unit": "days"})
    assert response.status == 404
    assert business_time(st) - before < dt.timedelta(hours=1)
