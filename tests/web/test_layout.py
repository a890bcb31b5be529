"""Every page on a phone's width (no sideways scrolling of the page itself) and with the keyboard
alone (the skip link, then the forms reached and submitted by Tab and Enter)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.stack import Stack
from tests.web.conftest import operator_sign_in, sign_in, web_user

PAGES = ("/earn", "/account")


def test_pages_fit_a_phone_and_work_with_the_keyboard(browser: Browser, stack: Stack) -> None:
    user = web_user(stack, funds={"ETH": "2"})
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, stack, user)
        for path in PAGES:
            page.goto(stack.base_url + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)  # wide tables scroll inside their own box
        operator = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        operator_sign_in(operator, stack)
        for path in ("/console", "/console/users", "/console/staking", "/console/market"):
            operator.goto(stack.base_url + path)
            assert operator.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1, path
        operator.context.close()

        # keyboard only: the skip link is the first stop and leads to the content
        page.goto(stack.base_url + "/earn")
        page.keyboard.press("Tab")
        expect(page.locator("a.skip")).to_be_focused()
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
        # type an amount into the ETH purchase field and submit it with Enter
        field = page.get_by_label("Amount of ETH to stake")
        field.focus()
        page.keyboard.type("0.5")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("Purchase received")
    finally:
        context.close()
    assert stack.balances(user.creds.uid)[("6", "ETH")] == 1.5
