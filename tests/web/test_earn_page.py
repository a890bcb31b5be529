"""The Earn page: purchases, redemptions and cancels made in the browser, seen through python-okx;
charts; the API's own refusals; the redemption queue served after the operator advances the clock."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from decimal import Decimal

import httpx
import okx.Finance.EthStaking as OkxEth
from playwright.sync_api import Page, expect

from tests.stack import Creds, Stack
from tests.web.conftest import axe_serious, operator_sign_in, shot, sign_in, web_user
from tests.web.test_sign_in import csrf_of, http_sign_in

warnings.filterwarnings("ignore", category=DeprecationWarning)


def eth(stack: Stack, c: Creds) -> OkxEth.EthStakingAPI:
    return OkxEth.EthStakingAPI(c.api_key, c.secret, c.passphrase, False, c.flag, domain=stack.base_url, debug=False)


def beth(stack: Stack, c: Creds) -> Decimal:
    reply = eth(stack, c).eth_balance()
    assert reply["code"] == "0", reply
    return Decimal(reply["data"][0]["amt"]) if reply["data"] else Decimal(0)


def published(stack: Stack, product: str = "ETH", rate: str = "0.0284") -> None:
    """Today's rate of ``product`` (published unless it already is: the day's rate is final)."""
    if not stack.call("GET", f"/admin/staking/products/{product}/rates", params={"days": 1}):
        day = stack.services.staking.today()
        stack.call("PUT", f"/admin/staking/products/{product}/rates/{day}", json={"rate": rate})


def test_purchase_and_fast_redeem_on_the_page_are_seen_through_python_okx(page: Page, stack: Stack) -> None:
    published(stack)
    user = web_user(stack, funds={"ETH": "10"})
    sign_in(page, stack, user)
    expect(page.locator("#apy-ETH")).to_contain_text("%")
    expect(page.locator("#apy-chart-ETH[data-drawn='1']")).to_be_visible()  # uPlot drew the APY history
    page.get_by_label("Amount of ETH to stake").fill("1.5")
    page.get_by_role("button", name="Stake ETH").click()
    expect(page.get_by_role("status")).to_contain_text("Purchase received")
    expect(page.locator("#bal-ETH")).to_have_text("1.5")
    assert beth(stack, user.creds) == Decimal("1.5")
    page.get_by_label("Amount of BETH to redeem").fill("0.25")
    page.get_by_role("button", name="Redeem BETH").click()
    expect(page.get_by_role("status")).to_contain_text("Redemption requested")
    assert stack.balances(user.creds.uid)[("6", "BETH")] == Decimal("1.25")  # free; 0.75 still redeeming
    history = eth(stack, user.creds).eth_purchase_redeem_history()
    assert [(o["type"], o["amt"], o["status"]) for o in history["data"]] == [
        ("redeem", "0.25", "success"), ("purchase", "1.5", "success")]
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("redeem (fast)")
    shot(page, "earn")
    assert axe_serious(page) == []
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_bad_amounts_get_the_api_message_and_change_nothing(stack: Stack) -> None:
    user = web_user(stack, funds={"ETH": "1"})
    client = http_sign_in(stack, user)
    token = csrf_of(client.get("/earn").text)
    cases = {"1e5": "plain decimal number", "-1": "must not be negative", "0": "greater than 0",
             "0.0000000000000000001": "too many decimal places", "": "is required",
             "5": "(code 51736)"}
    for amt, message in cases.items():
        r = client.post("/earn/ETH/purchase", data={"csrf": token, "amt": amt})
        assert r.status_code == 400, (amt, r.status_code)
        assert message in r.text, (amt, re.findall(r'role="alert">([^<]*)', r.text))
    r = client.post("/earn/XYZ/purchase", data={"csrf": token, "amt": "1"})
    assert r.status_code == 404
    r = client.get("/earn", params={"type": "bogus", "after": "12x"})
    assert r.status_code == 200 and "Type must be one of" in r.text
    assert stack.balances(user.creds.uid)[("6", "ETH")] == 1
    assert beth(stack, user.creds) == 0


def test_queue_cancel_rules_and_a_redemption_paid_after_a_console_clock_advance(
        page: Page, fresh_stack: Callable[..., Stack]) -> None:
    stack = fresh_stack()
    stack.call("POST", "/admin/clock/freeze")
    stack.services.staking.update_product("ETH", {"fast_redemption_enabled": False})
    user = web_user(stack, funds={"ETH": "5"})
    other = web_user(stack, funds={"ETH": "5"})
    sign_in(page, stack, user)
    page.get_by_label("Amount of ETH to stake").fill("2")
    page.get_by_role("button", name="Stake ETH").click()
    for amt in ("0.5", "0.75"):
        page.get_by_label("Amount of BETH to redeem").fill(amt)
        page.get_by_role("button", name="Redeem BETH").click()
        expect(page.get_by_role("status")).to_contain_text("Redemption requested")
    pending = eth(stack, user.creds).eth_purchase_redeem_history(status="pending")["data"]
    assert sorted(o["amt"] for o in pending) == ["0.5", "0.75"]
    first, second = sorted(pending, key=lambda o: o["amt"])
    # another user's order id in a cancel form: the API's refusal, nothing changed
    intruder = http_sign_in(stack, other)
    r = intruder.post("/earn/ETH/cancel", data={"csrf": csrf_of(intruder.get("/earn").text), "ordId": first["ordId"]})
    assert r.status_code == 400 and "(code " in r.text
    r = intruder.post("/earn/ETH/cancel", data={"csrf": csrf_of(intruder.get("/earn").text), "ordId": "1e3"})
    assert r.status_code == 400 and "digits 0-9" in r.text
    assert len(eth(stack, user.creds).eth_purchase_redeem_history(status="pending")["data"]) == 2
    # the owner cancels the first from the queue table
    page.get_by_role("button", name=f"Cancel redemption {first['ordId']}").click()
    expect(page.get_by_role("status")).to_contain_text("Redemption cancelled")
    assert stack.balances(user.creds.uid)[("6", "BETH")] == Decimal("1.25")  # free; 0.75 still redeeming
    # the operator advances the clock in the console; the queue pays the second redemption
    console = page.context.browser.new_context().new_page()  # type: ignore[union-attr]
    operator_sign_in(console, stack)
    console.get_by_label("Advance by").fill("7")
    console.get_by_label("Unit").select_option("days")
    console.get_by_role("button", name="Advance the clock").click()
    console.wait_for_url(re.compile(r".*/console\?done=advance"), timeout=120_000)  # the advance has finished
    expect(console.get_by_role("status")).to_contain_text("The clock moved ahead 7 days")
    console.context.close()
    page.goto(f"{stack.base_url}/earn?type=redeem&status=success")
    expect(page.locator("#history-table tbody tr")).to_have_count(1)
    expect(page.locator("#history-table tbody tr").first).to_contain_text("0.75")
    done = eth(stack, user.creds).eth_purchase_redeem_history(status="success", type="redeem")["data"]
    assert [o["ordId"] for o in done] == [second["ordId"]]
    assert stack.balances(user.creds.uid)[("6", "ETH")] == Decimal("3.75")
    stack.audit_ok()


def test_history_filters_and_paging(stack: Stack) -> None:
    user = web_user(stack, funds={"ETH": "10"})
    client = http_sign_in(stack, user)
    token = csrf_of(client.get("/earn").text)
    for _ in range(23):
        assert client.post("/earn/ETH/purchase", data={"csrf": token, "amt": "0.01"}).status_code == 303
    first = client.get("/earn", params={"product": "ETH", "type": "purchase"})
    assert first.text.count("<td>purchase</td>") == 20
    older = re.search(r'href="(/earn\?[^"]*after=\d+[^"]*)"', first.text)
    assert older, "an Older link"
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count("<td>purchase</td>") == 3
    far = client.get("/earn", params={"product": "ETH", "after": "999999999999999"})
    assert far.status_code == 200 and "past the year 9999" in far.text
    none = client.get("/earn", params={"product": "ETH", "type": "redeem"})
    assert "No orders match." in none.text
    assert httpx.get(stack.base_url + "/earn").status_code == 303
