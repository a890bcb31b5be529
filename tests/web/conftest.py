"""Browser tests: Playwright (Python) driving Debian's Chromium against a real server.

The browser is found on the PATH (``chromium``; the test command installs it with apt-get). A
failing test leaves a screenshot of its page in ``test-results/``. With ``STAKEHOUSE_SCREENSHOTS=1``
the tests that show a page also write the screenshots of ``docs/web.md`` into ``docs/web/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.stack import ADMIN_TOKEN, Creds, Stack

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "support" / "vendor" / "axe.min.js"
RESULTS = ROOT / "test-results"
DOCS = ROOT / "docs" / "web"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


# Module scope, not session: while Playwright's sync API is started it keeps an asyncio loop running
# in the test thread, and the other tests that the same xdist worker runs later call asyncio.run().
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = chromium_path()
    if path is None:  # only where no browser could be installed (the test command installs one)
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (make test does it as root)")
    b = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"])
    yield b
    b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash.setdefault(FAILED, False)
        if report.failed:
            item.stash[FAILED] = True


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.console_errors = errors  # type: ignore[attr-defined]
    yield pg
    if request.node.stash.get(FAILED, False):
        RESULTS.mkdir(exist_ok=True)
        try:
            pg.screenshot(path=str(RESULTS / f"{request.node.name}.png"), full_page=True)
        except Exception:  # the page may be gone; the test's own failure is what matters
            pass
    context.close()


def shot(pg: Page, name: str) -> None:
    """A screenshot for docs/web.md, written only when STAKEHOUSE_SCREENSHOTS=1."""
    if os.environ.get("STAKEHOUSE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def axe_serious(pg: Page) -> list[dict[str, Any]]:
    """The axe-core scan's serious and critical violations on the page as it is now. axe is
    evaluated through the DevTools protocol, which the page's CSP does not govern."""
    pg.evaluate(AXE.read_text())
    result = pg.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result if v["impact"] in ("serious", "critical")]


@dataclass
class WebUser:
    creds: Creds
    login: str
    password: str


def web_user(stack: Stack, *, funds: dict[str, str] | None = None, kyc: int = 2, env: str = "live") -> WebUser:
    """A new user with an API key, funds and a web login."""
    creds = stack.new_user(env=env, funds=funds, kyc=kyc)
    login = "u" + secrets.token_hex(6)
    password = secrets.token_urlsafe(14)
    stack.call("PUT", f"/admin/users/{creds.uid}/web-login", json={"login": login, "password": password})
    return WebUser(creds, login, password)


def sign_in(pg: Page, stack: Stack, user: WebUser, next_path: str = "/earn") -> None:
    pg.goto(f"{stack.base_url}/login?next={next_path}")
    pg.get_by_label("Login").fill(user.login)
    pg.get_by_label("Password").fill(user.password)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(f"{stack.base_url}{next_path}*")


def operator_sign_in(pg: Page, stack: Stack) -> None:
    pg.goto(f"{stack.base_url}/console/login")
    pg.get_by_label("Admin token").fill(ADMIN_TOKEN)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(f"{stack.base_url}/console*")
