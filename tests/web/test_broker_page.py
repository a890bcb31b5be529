"""The broker page in a real browser, on SQLite and PostgreSQL: sub-accounts created through the
form and listed with their keys (never a secret), fee-rate changes set and listed (a bad value
changes nothing), daily rebates as a table and a chart, a rebate detail file requested and
downloaded through the page's signed link (an altered link gets no file), and the 403 page for
a sub-account and for a user that is not a broker."""

from __future__ import annotations

import csv
import io
import secrets
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
from playwright.sync_api import Page, expect

from tests.api.test_broker_api import make_broker, name, ok, okx, sub_key
from tests.api.test_trading_broker import buy, fixed_price, funded_sub
from tests.stack import Creds, Stack
from tests.web.conftest import WebUser, axe_serious, shot, sign_in, web_user

warnings.filterwarnings("ignore", category=DeprecationWarning)

D = Decimal


def login_for(stack: Stack, c: Creds) -> WebUser:
    """A web login for an existing user (a broker made through the admin API, a sub-account)."""
    login, password = "u" + secrets.token_hex(6), secrets.token_urlsafe(14)
    stack.call("PUT", f"/admin/users/{c.uid}/web-login", json={"login": login, "password": password})
    return WebUser(c, login, password)


def sub_uid(stack: Stack, broker: Creds, sub: str) -> str:
    return str(next(s["uid"] for s in stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts")
                    if s["subAcct"] == sub))


def fee_count(stack: Stack, broker: Creds) -> int:
    return len(stack.services.broker.fee_history(broker.uid))


def test_sub_accounts_keys_and_fee_rates_through_the_page(stack: Stack, page: Page) -> None:
    broker = make_broker(stack)
    sign_in(page, stack, login_for(stack, broker), "/broker")
    expect(page.get_by_role("heading", name="Broker", exact=True)).to_be_visible()

    # a sub-account through the form
    sub = name("w")
    create = page.locator("form[action='/broker/sub-accounts']")
    create.get_by_label("Sub-account name").fill(sub)
    create.get_by_label("Label").fill("desk1")
    create.get_by_role("button", name="Create sub-account").click()
    page.wait_for_url("**/broker?done=create")
    expect(page.get_by_role("status")).to_contain_text("Sub-account created")
    row = page.locator("#subs-table tbody tr", has_text=sub)
    uid = sub_uid(stack, broker, sub)
    expect(row).to_contain_text(uid)
    expect(row).to_contain_text("desk1")
    expect(row).to_contain_text("active")

    # its key is listed, its secret and passphrase never
    key = sub_key(stack, broker, sub)
    page.goto(f"{stack.base_url}/broker")
    expect(page.locator("#keys-table tbody tr", has_text=key.api_key)).to_contain_text(sub)
    content = page.content()
    assert key.secret not in content and key.passphrase not in content

    # the same name again: the API's refusal, beside the form
    create.get_by_label("Sub-account name").fill(sub)
    create.get_by_role("button", name="Create sub-account").click()
    expect(page.get_by_role("alert")).to_contain_text("59")
    assert len(stack.call("GET", f"/admin/brokers/{broker.uid}/sub-accounts")) == 1

    # a fee-rate change through the form, then in the history
    fees = page.locator("form[action='/broker/fee-rate']")
    page.goto(f"{stack.base_url}/broker")
    fees.get_by_label("Sub-account (empty: all)").fill(sub)
    fees.get_by_label("Instrument type").select_option("SPOT")
    fees.get_by_label("Change type").select_option("absolute")
    fees.get_by_label("Taker change").fill("12.5")
    fees.get_by_label("Maker change").fill("3")
    fees.get_by_role("button", name="Set fee rate").click()
    page.wait_for_url("**/broker?done=fee")
    first = page.locator("#fees-table tbody tr").first
    for text in (sub, "SPOT", "absolute", "12.5", "3"):
        expect(first).to_contain_text(text)
    assert fee_count(stack, broker) == 1
    setting = stack.services.broker.fee_history(broker.uid)[0]
    assert (setting.uid, setting.chg_taker, setting.chg_maker) == (uid, D("12.5"), D("3"))

    # bad values: the API's message, status 400, nothing recorded
    for taker, maker in (("abc", ""), ("1e3", ""), ("1000.5", ""), ("", "")):
        fees.get_by_label("Taker change").fill(taker)
        fees.get_by_label("Maker change").fill(maker)
        with page.expect_response(lambda r: r.url.endswith("/broker/fee-rate")) as got:
            fees.get_by_role("button", name="Set fee rate").click()
        assert got.value.status == 400
        expect(page.get_by_role("alert")).to_contain_text("code 5")
        assert fee_count(stack, broker) == 1
    expect(page.locator("#fees-table tbody tr")).to_have_count(1)
    assert axe_serious(page) == []
    # nothing but the refused forms' own 400s (no script error, no CSP refusal)
    assert [e for e in page.console_errors if "status of 400" not in e] == []  # type: ignore[attr-defined]


def test_rebates_chart_and_a_detail_file_downloaded(fresh_stack: Callable[..., Stack], page: Page,
                                                    tmp_path: Path) -> None:
    stack = fresh_stack()  # moves the clock: a server of its own
    broker = make_broker(stack, funds={"USDT": "1"})
    one, two = funded_sub(stack, broker, "50000"), funded_sub(stack, broker, "50000")
    ok(okx(stack, broker).privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "absolute", "chgTaker": "10"})
    fixed_price(stack, "BTC-USDT", "60000")
    buy(stack, one, "0.01"), buy(stack, one, "0.003"), buy(stack, two, "0.02")
    stack.call("POST", "/admin/clock/advance", json={"days": 1})  # the run at 00:00 HKT
    records = stack.call("GET", f"/admin/brokers/{broker.uid}/rebates")
    assert len(records) == 2 and all(D(r["income"]) > 0 for r in records), records
    total = sum(D(r["income"]) for r in records)
    day, date = records[0]["day"], records[0]["rebateDate"]

    sign_in(page, stack, login_for(stack, broker), "/broker")
    rows = page.locator("#rebates-table tbody tr")
    expect(rows).to_have_count(2)
    for r in records:
        expect(page.locator("#rebates-table tbody tr", has_text=r["income"])).to_have_count(1)
    expect(page.locator("#rebate-total")).to_have_text(str(total))
    expect(page.locator("figure.chart[data-drawn='1']")).to_be_visible()

    # a detail file of the day: asked for, written at the next tick, downloaded through the page
    files = page.locator("form[action='/broker/rebate-files']")
    files.get_by_label("First day").fill(f"{day[:4]}-{day[4:6]}-{day[6:]}")
    files.get_by_label("End day").fill(f"{date[:4]}-{date[4:6]}-{date[6:]}")
    files.get_by_role("button", name="Request file").click()
    page.wait_for_url("**/broker?done=file")
    expect(page.locator("#files-table tbody tr")).to_contain_text("being written")
    stack.call("POST", "/admin/clock/advance", json={"seconds": 1})  # the next job tick writes it
    page.goto(f"{stack.base_url}/broker#files")
    link = page.locator("#files-table a")
    expect(link).to_have_count(1)
    shot(page, "broker")
    with page.expect_download() as got:
        link.click()
    saved = tmp_path / "rebates.csv"
    got.value.save_as(saved)
    rows_csv = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(rows_csv) == 3
    assert sum(D(r["rebate"]) for r in rows_csv) == total
    for r in records:
        assert sum(D(x["rebate"]) for x in rows_csv if x["subAcct"] == r["subAcct"]) == D(r["income"])

    # the link is the credential: altered, or naming another path, it gets no file
    href = link.get_attribute("href")
    assert href is not None and href.startswith(stack.base_url + "/files/rebates/")
    parts = urlsplit(href)
    file_name = parts.path.rsplit("/", 1)[1]
    for bad in (href.replace("Signature=", "Signature=A"), href.replace(file_name, "x" + file_name),
                href.replace(file_name, quote("../" + file_name, safe="")),
                href.replace(file_name, quote("../../../etc/passwd", safe="")),
                f"{stack.base_url}/files/rebates/..%2F..%2F{file_name}?{parts.query}",
                f"{stack.base_url}/files/rebates/%2e%2e/{file_name}?{parts.query}"):
        r = httpx.get(bad, timeout=10)
        assert r.status_code in (403, 404), (bad, r.status_code)
        assert "subAcct" not in r.text and "root:" not in r.text
    assert axe_serious(page) == []
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_sub_accounts_and_non_brokers_get_the_403_page(stack: Stack, page: Page) -> None:
    broker = make_broker(stack)
    sub = name("w")
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": sub})
    sub_creds = Creds(sub_uid(stack, broker, sub), "live", "", "", "")
    sign_in(page, stack, login_for(stack, sub_creds), "/earn")
    expect(page.get_by_role("link", name="Broker")).to_have_count(0)  # not offered to a sub-account
    got = page.goto(f"{stack.base_url}/broker")
    assert got is not None and got.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("sub-account cannot open it")
    page.context.clear_cookies()

    plain = web_user(stack)
    sign_in(page, stack, plain, "/earn")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    got = page.goto(f"{stack.base_url}/broker")
    assert got is not None and got.status == 403
    expect(page.locator("main")).to_contain_text("not a broker")
    assert broker.api_key not in page.content()
    # the forms refuse it too, changing nothing
    wanted = name("w")
    for path, form in (("/broker/sub-accounts", {"subAcct": wanted}),
                       ("/broker/fee-rate", {"chgType": "absolute", "chgTaker": "1"}),
                       ("/broker/rebate-files", {"begin": "2026-01-01", "end": "2026-01-02"})):
        r = page.request.post(f"{stack.base_url}{path}", form={"csrf": csrf or "", **form}, max_redirects=0)
        assert r.status == 403, (path, r.status)
    assert stack.services.broker.fee_history(plain.creds.uid) == []
    with stack.services.db.read() as conn:
        assert not stack.services.accounts.name_taken(conn, wanted)


def test_broker_page_has_no_serious_accessibility_violations(stack: Stack, page: Page) -> None:
    broker = make_broker(stack)
    sub = name("w")
    ok(okx(stack, broker).privatePostBrokerNdCreateSubaccount, {"subAcct": sub, "label": "desk"})
    sub_key(stack, broker, sub)
    ok(okx(stack, broker).privatePostBrokerNdSetSubaccountFeeRate, {"chgType": "percentage", "chgMaker": "20"})
    sign_in(page, stack, login_for(stack, broker), "/broker")
    expect(page.locator("#subs-table tbody tr", has_text=sub)).to_have_count(1)
    assert axe_serious(page) == []
