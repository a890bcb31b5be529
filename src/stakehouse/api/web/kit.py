"""What every web page shares: the session cookie, CSRF tokens, templates, security headers and
friendly error pages. The pages themselves (``auth``, ``earn``, ``broker``, ``account``,
``console``) parse a form, call one service and render; no business rule lives here or there.

- **Session**: an opaque random cookie (``sh_session``; ``HttpOnly``, ``SameSite=Lax``, ``Secure``
  outside the sandbox) naming a server-side session (``accounts.logins``).
- **CSRF**: every form carries ``csrf`` = HMAC(server-derived key, the session's token hash).
  It is bound to the session, so a token from another or an ended session is refused. Before
  sign-in the form is bound the same way to a random pre-session cookie (``sh_pre``).
- **Headers**: a Content-Security-Policy with no inline script or style, frame denial, nosniff,
  no referrer leaving the site, and ``no-store`` on every page (they show balances and keys).
- **Errors**: a domain refusal is shown beside the form, with the OKX API's own code and message;
  anything unexpected is logged and answered with a plain error page, never a trace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stakehouse import errors as dom
from stakehouse.accounts.logins import WebSession
from stakehouse.accounts.service import User
from stakehouse.api.okx.errors import Overrides, from_domain
from stakehouse.api.web.forms import FormError
from stakehouse.db.engine import unavailable
from stakehouse.digits import ascii_digits
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "sh_session"
PRE_COOKIE = "sh_pre"
#: Largest form body read (the biggest form has a handful of short fields).
MAX_FORM_BYTES = 16 * 1024

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the wrapped app (pages and static files);
    pages also get ``Cache-Control: no-store``."""

    def __init__(self, app: ASGIApp, *, no_store: bool = True) -> None:
        self.app = app
        self.no_store = no_store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"
                           or not self.no_store]
                present = {h[0].lower() for h in headers}  # a page may set its own (the consent page's CSP)
                headers += [h for h in SECURITY_HEADERS if h[0] not in present]
                if self.no_store:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Denied(Exception):
    """The signed-in person may not open this page (a sub-account on the broker page, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Web:
    """The web adapter's shared state: services, the CSRF key, the sign-in throttle."""

    services: Services
    admin_token: str
    csrf_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.csrf_key = self.services.box.derive("web-csrf")

    @property
    def secure_cookies(self) -> bool:
        return not self.services.settings.sandbox

    def csrf_for(self, binding: str) -> str:
        mac = hmac.new(self.csrf_key, binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def csrf_ok(self, binding: str, presented: str) -> bool:
        return bool(binding) and hmac.compare_digest(self.csrf_for(binding).encode(), presented.encode())


@dataclass
class Ctx:
    """One page request: who is signed in, the CSRF token for its forms, and the parsed form."""

    web: Web
    request: Request
    session: WebSession | None
    user: User | None
    csrf: str
    form: FormData | None = None
    #: Cookies to set on the response (name -> value; "" deletes).
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        return self.web.services

    def field(self, name: str) -> str:
        value = self.form.get(name, "") if self.form is not None else ""
        return value if isinstance(value, str) else ""

    def texts(self, name: str) -> list[str]:
        """Every text value of a multi-valued field (checkboxes)."""
        if self.form is None:
            return []
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    def fields(self) -> dict[str, str]:
        """The form's single-valued text fields (what :mod:`forms` parsers read)."""
        if self.form is None:
            return {}
        return {k: v for k, v in self.form.items() if isinstance(v, str)}

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        body = templates.get_template(template).render(
            csrf=self.csrf, user=self.user, session=self.session, sandbox=self.services.settings.sandbox,
            path=self.request.url.path, **values)
        return self.finish(HTMLResponse(body, status_code=status))

    def finish(self, response: Response) -> Response:
        for name, value in self.cookies.items():
            if value:
                response.set_cookie(name, value, httponly=True, samesite="lax", secure=self.web.secure_cookies,
                                    path="/")
            else:
                response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=self.web.secure_cookies)
        return response

    def redirect(self, path: str, **query: str) -> Response:
        """303 See Other to one of our own paths (never a URL taken from the request)."""
        assert path.startswith("/") and not path.startswith("//")
        target = path + ("?" + urlencode(query) if query else "")
        return self.finish(RedirectResponse(target, status_code=303))

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a (blocking) service call in a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)


def refusal_message(exc: Exception, overrides: Overrides | None = None) -> str:
    """The message a form shows for a refused action: the OKX API's message and code for the same
    refusal (so the page and the API say the same thing; ``overrides`` are the matching OKX
    route's own codes), or the form's own for a bad field."""
    if isinstance(exc, FormError):
        return str(exc)
    if isinstance(exc, dom.DomainError):
        err = from_domain(exc, overrides)
        return f"{err.msg} (code {err.code})"
    raise exc


def error_page(status: int, title: str, message: str) -> Response:
    body = templates.get_template("error.html").render(title=title, message=message, user=None, csrf="",
                                                        session=None, sandbox=False, path="")
    return HTMLResponse(body, status_code=status)


Handler = Callable[[Ctx], Awaitable[Response]]

#: Who may open a page: anyone, a signed-in user, or a signed-in operator.
PUBLIC, USER, OPERATOR = "public", "user", "operator"


def page(web: Web, handler: Handler, *, who: str) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint around ``handler``: loads the session, enforces ``who`` and the CSRF
    token on POST, and turns anything unexpected into an error page."""

    async def endpoint(request: Request) -> Response:
        try:
            ctx = await _context(web, request)
            if who == USER and ctx.user is None:
                if ctx.session is not None:  # an operator's session: no user to show this page for
                    return error_page(403, "Not allowed", "This page is for users; you are signed in to the "
                                      "operator console. Sign out there to sign in as a user.")
                return _to_sign_in(ctx, "/login")
            if who == OPERATOR and not (ctx.session and ctx.session.is_operator):
                if ctx.user is not None:
                    return error_page(403, "Not allowed", "The operator console needs an operator sign-in.")
                return _to_sign_in(ctx, "/console/login")
            if request.method == "POST":
                length = request.headers.get("content-length", "")
                if not ascii_digits(length, 12):  # browsers always say how long a form is
                    return error_page(411, "Length required", "The form did not say how long it is.")
                if int(length) > MAX_FORM_BYTES:
                    return error_page(413, "Too large", "The form sent too much data.")
                try:
                    ctx.form = await request.form(max_files=0, max_fields=50)
                except (MultiPartException, HTTPException):  # Starlette wraps the first in the second
                    return error_page(400, "Bad form", "The form could not be read (files are not accepted).")
                pre = request.cookies.get(PRE_COOKIE, "")
                binding = ctx.session.token_hash if ctx.session else "pre:" + pre if pre else ""
                if not web.csrf_ok(binding, ctx.field("csrf")):
                    log.info("web_csrf_refused", path=request.url.path[:64])
                    return error_page(403, "Form expired",
                                      "This form is no longer valid (it was opened in another session). "
                                      "Reload the page and try again.")
            return await handler(ctx)
        except Denied as exc:
            return error_page(403, "Not allowed", exc.message)
        except Exception as exc:  # an error page, never a trace
            if unavailable(exc):
                log.warning("database_unavailable", path=request.url.path[:128], error=type(exc).__name__)
                return error_page(503, "Temporarily unavailable", "The database cannot answer right now. "
                                  "Nothing was changed; try again in a moment.")
            log.exception("web_unhandled", path=request.url.path[:128], error=type(exc).__name__)
            return error_page(500, "Something went wrong", "The server could not complete this request. "
                              "Nothing was changed by the failed step; try again in a moment.")

    return endpoint


def _to_sign_in(ctx: Ctx, login_path: str) -> Response:
    had_cookie = bool(ctx.request.cookies.get(SESSION_COOKIE))
    if had_cookie:
        ctx.cookies[SESSION_COOKIE] = ""
    url = ctx.request.url
    # back to the same page after sign-in, with its query (the consent page's OAuth request)
    query = {"next": url.path + (f"?{url.query}" if url.query and ctx.request.method == "GET" else "")}
    if had_cookie:
        query["expired"] = "1"
    return ctx.redirect(login_path, **query)


async def _context(web: Web, request: Request) -> Ctx:
    token = request.cookies.get(SESSION_COOKIE, "")
    session = await run_in_threadpool(web.services.logins.session, token) if token else None
    user = await run_in_threadpool(web.services.accounts.get, session.uid) if session and session.uid else None
    cookies: dict[str, str] = {}
    if session is not None:
        csrf = web.csrf_for(session.token_hash)
    else:
        pre = request.cookies.get(PRE_COOKIE, "")
        if not (16 <= len(pre) <= 64 and pre.replace("-", "").replace("_", "").isalnum()):
            pre = secrets.token_urlsafe(24)
            cookies[PRE_COOKIE] = pre
        csrf = web.csrf_for("pre:" + pre)
    return Ctx(web, request, session, user, csrf, cookies=cookies)


def next_path(raw: str, default: str) -> str:
    """Where to go after sign-in: one of our own absolute paths, else ``default`` (no open redirect)."""
    if raw.startswith("/") and not raw.startswith("//") and "\\" not in raw and len(raw) <= 2200 and \
            raw.isprintable() and ":" not in raw.split("?")[0]:
        return raw
    return default
