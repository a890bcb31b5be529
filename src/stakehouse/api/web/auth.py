"""Sign-in and sign-out: users with their login and password, operators with the admin token.

Wrong passwords are throttled before any hash runs (5 a minute per login, 20 per client IP, in
the rate limiter's storage, so every worker counts together); the scrypt check runs in a worker
thread, at most :data:`CHECKS_AT_ONCE` at a time per process. Failures are logged with the login
and IP, never the password.
"""

from __future__ import annotations

import hmac

import anyio
import structlog
from starlette.responses import Response
from starlette.routing import Route

from stakehouse.accounts.logins import BadCredentials, SignInRefused
from stakehouse.api.net import client_ip
from stakehouse.api.okx.ratelimit import Limit, RateLimiter
from stakehouse.api.web import forms
from stakehouse.api.web.kit import OPERATOR, PRE_COOKIE, PUBLIC, SESSION_COOKIE, Ctx, Web, next_path, page

log = structlog.get_logger(__name__)

FAILURES_PER_LOGIN = Limit(5, 60, "login")
FAILURES_PER_IP = Limit(20, 60, "ip")
CHECKS_AT_ONCE = 2
THROTTLED = "Too many failed sign-ins. Wait a minute and try again."


def routes(web: Web, limiter: RateLimiter) -> list[Route]:
    checks = anyio.CapacityLimiter(CHECKS_AT_ONCE)

    def ip_of(ctx: Ctx) -> str:
        return client_ip(ctx.request, web.services.settings.trusted_proxies)

    async def throttled(ctx: Ctx, login: str) -> bool:
        ip = ip_of(ctx)
        return not (await limiter.test(FAILURES_PER_IP, "web-ip", ip)
                    and (not login or await limiter.test(FAILURES_PER_LOGIN, "web-login", login)))

    async def failed(ctx: Ctx, login: str, why: str) -> None:
        ip = ip_of(ctx)
        log.info("web_sign_in_failed", login=login[:32], ip=ip, why=why)
        await limiter.hit(FAILURES_PER_IP, "web-ip", ip)
        if login:
            await limiter.hit(FAILURES_PER_LOGIN, "web-login", login)

    def signed_in(ctx: Ctx, token: str, target: str) -> Response:
        ctx.cookies[SESSION_COOKIE] = token
        ctx.cookies[PRE_COOKIE] = ""
        return ctx.redirect(target)

    async def login_form(ctx: Ctx) -> Response:
        if ctx.user is not None:
            return ctx.redirect(next_path(ctx.request.query_params.get("next", ""), "/earn"))
        expired = ctx.request.query_params.get("expired") == "1"
        return ctx.render("login.html", next=next_path(ctx.request.query_params.get("next", ""), "/earn"),
                          notice="Your session has ended. Sign in again." if expired else "", error="", login="")

    async def login(ctx: Ctx) -> Response:
        target = next_path(ctx.field("next"), "/earn")
        login_name = ctx.field("login").strip()[:64]

        def again(message: str, status: int) -> Response:
            return ctx.render("login.html", status=status, next=target, notice="", error=message,
                              login=login_name if login_name.isprintable() else "")

        try:
            forms.text(ctx.fields(), "login", "Login", max_len=32, required=True)
            password = forms.text(ctx.fields(), "password", "Password", max_len=128, required=True)
        except forms.FormError as exc:
            return again(str(exc), 400)
        if await throttled(ctx, login_name):
            log.info("web_sign_in_throttled", login=login_name, ip=ip_of(ctx))
            return again(THROTTLED, 429)
        try:
            async with checks:
                user = await anyio.to_thread.run_sync(web.services.logins.check, login_name, password)
        except BadCredentials as exc:
            await failed(ctx, login_name, "credentials")
            return again(exc.message, 401)
        except SignInRefused as exc:
            await failed(ctx, login_name, "refused")
            return again(exc.message, 403)
        token, _ = await ctx.call(web.services.logins.open_session, user.uid)
        log.info("web_sign_in", uid=user.uid, ip=ip_of(ctx))
        return signed_in(ctx, token, target)

    async def logout(ctx: Ctx) -> Response:
        token = ctx.request.cookies.get(SESSION_COOKIE, "")
        if token:
            await ctx.call(web.services.logins.end_session, token)
        ctx.cookies[SESSION_COOKIE] = ""
        return ctx.redirect("/login")

    async def console_login_form(ctx: Ctx) -> Response:
        if ctx.session is not None and ctx.session.is_operator:
            return ctx.redirect("/console")
        expired = ctx.request.query_params.get("expired") == "1"
        return ctx.render("console_login.html", error="",
                          notice="Your session has ended. Sign in again." if expired else "")

    async def console_login(ctx: Ctx) -> Response:
        token = ctx.field("token")
        if await throttled(ctx, ""):
            return ctx.render("console_login.html", status=429, error=THROTTLED, notice="")
        if not web.admin_token or len(token) > 256 or \
                not hmac.compare_digest(token.encode(), web.admin_token.encode()):
            await failed(ctx, "", "admin token")
            return ctx.render("console_login.html", status=401, error="That is not the admin token.", notice="")
        cookie, _ = await ctx.call(web.services.logins.open_session, None)
        log.info("web_operator_sign_in", ip=ip_of(ctx))
        return signed_in(ctx, cookie, "/console")

    async def home(ctx: Ctx) -> Response:
        if ctx.session is not None and ctx.session.is_operator:
            return ctx.redirect("/console")
        return ctx.redirect("/earn" if ctx.user else "/login")

    return [
        Route("/", page(web, home, who=PUBLIC), methods=["GET"]),
        Route("/login", page(web, login_form, who=PUBLIC), methods=["GET"]),
        Route("/login", page(web, login, who=PUBLIC), methods=["POST"]),
        Route("/logout", page(web, logout, who=PUBLIC), methods=["POST"]),
        Route("/console/login", page(web, console_login_form, who=PUBLIC), methods=["GET"]),
        Route("/console/login", page(web, console_login, who=PUBLIC), methods=["POST"]),
        Route("/console/logout", page(web, logout, who=OPERATOR), methods=["POST"]),
    ]
