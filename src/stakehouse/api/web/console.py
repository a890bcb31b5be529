"""``/console``: the operator console (oauth-and-web.md 2), for an operator signed in with the admin token.

Four pages with a small sub-navigation, each calling the same services (and the same
``stakehouse.operator`` parsers and renderers) as the admin API, so the rules and the refusals are
the admin API's:

- ``/console``: business time (and in the sandbox a form that advances the clock by hours or days,
  running every job that falls due on the way, with a progress bar while it works), the audit
  status and the latest job runs.
- ``/console/users``: users with KYC level and freezes; per user: set KYC, freeze or unfreeze
  (global), set the web login and password.
- ``/console/staking``: liquid staking products, their recent APYs, a form to publish a day's rate,
  and each product's redemption queue.
- ``/console/market``: index prices with a form to set one, and the DCD series (read-only).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import structlog
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stakehouse import errors as dom
from stakehouse.api.web import forms
from stakehouse.api.web.kit import OPERATOR, Ctx, Web, error_page, page, refusal_message
from stakehouse.clock import from_ms
from stakehouse.operator.accounts import user_out
from stakehouse.operator.dcd import series_out
from stakehouse.operator.platform import clock_out
from stakehouse.operator.staking import publish, queue_out, rates_out
from stakehouse.operator.trading import markets, set_price
from stakehouse.wiring import Services

log = structlog.get_logger(__name__)

#: Job runs listed on the overview (newest first).
JOB_RUNS_SHOWN = 25
#: Users listed on the users page (oldest first, as the admin API lists them).
USERS_SHOWN = 200
#: Days of published rates shown per staking product.
RATE_DAYS = 7
#: How far one advance may move the clock, per unit (90 days).
ADVANCE_LIMITS = {"hours": 90 * 24, "days": 90}

class ClockAdvance:
    """The sandbox's one clock advance started from the console, run in a worker thread while the
    page shows its progress (``GET /console/clock/progress``, polled by ``app.js``). One at a time
    per process; the sandbox is one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: dict[str, Any] | None = None

    def running(self) -> bool:
        return self.state is not None and not self.state["done"]

    def start(self, services: Services, by: dt.timedelta, label: str) -> bool:
        """Start advancing ``by``; ``False`` when an advance is already running."""
        with self._lock:
            if self.running():
                return False
            now = services.clock.now()
            state: dict[str, Any] = {"label": label, "from": now, "target": now + by, "reached": now, "runs": 0,
                                     "done": False, "error": ""}
            self.state = state

        def progress(reached: dt.datetime, runs: int) -> None:
            state["reached"], state["runs"] = reached, runs

        def run() -> None:
            try:
                state["runs"] = len(services.advance_clock(by=by, progress=progress))
                state["reached"] = services.clock.now()
            except dom.DomainError as exc:
                state["error"] = refusal_message(exc)
            except Exception as exc:  # reported on the page, logged with its trace
                log.exception("console_advance_failed", error=type(exc).__name__)
                state["error"] = "The advance stopped on an unexpected error (see the server log); what ran is kept."
            finally:
                state["done"] = True

        threading.Thread(target=run, name="console-advance", daemon=True).start()
        return True

    def out(self) -> dict[str, Any]:
        st = self.state
        if st is None:
            return {"running": False}
        total = (st["target"] - st["from"]).total_seconds()
        done = min((st["reached"] - st["from"]).total_seconds(), total)
        return {"running": not st["done"], "done": st["done"], "label": st["label"], "runs": st["runs"],
                "reached": st["reached"].strftime("%Y-%m-%d %H:%M"), "error": st["error"],
                "total": int(total), "progress": int(done)}


DONE = {
    "kyc": "KYC level set.",
    "freeze": "Account frozen: its API keys and web sign-in are refused until it is unfrozen.",
    "unfreeze": "Account unfrozen.",
    "web-login": "Web login set; the user's open web sessions were ended.",
    "rate": "Rate published.",
    "price": "Index price set.",
}


def routes(web: Web) -> list[Route]:
    s = web.services
    advancing = ClockAdvance()

    # -- overview and the clock ----------------------------------------------------------

    def overview() -> dict[str, Any]:
        report = s.audit()
        return {"clock": clock_out(s), "audit": report, "failing": [c for c in report.checks if not c.ok],
                "runs": s.runner.history(JOB_RUNS_SHOWN), "limits": ADVANCE_LIMITS}

    def advanced_flash() -> tuple[str, str]:
        """What the last advance did (flash, error), once it has finished."""
        st = advancing.out()
        if not st.get("done"):
            return "", ""
        if st["error"]:
            return "", f"The advance by {st['label']} stopped at {st['reached']} UTC: {st['error']}"
        return (f"The clock moved ahead {st['label']}; {st['runs']} job {'run' if st['runs'] == 1 else 'runs'} "
                f"fell due on the way and ran (the latest are listed below)."), ""

    async def show_overview(ctx: Ctx, *, error: str = "", status: int = 200) -> Response:
        values = await ctx.call(overview)
        f = ctx.fields()
        flash, failed = advanced_flash() if ctx.request.query_params.get("done") == "advance" else ("", "")
        return ctx.render("console.html", status=status, error=error or failed, flash="" if error else flash,
                          advance=advancing.out(),
                          unit=f.get("unit", "days") if f.get("unit") in ADVANCE_LIMITS else "days",
                          amount=f.get("amount", "1")[:8], **values)

    async def home(ctx: Ctx) -> Response:
        return await show_overview(ctx)

    async def advance(ctx: Ctx) -> Response:
        if not s.settings.sandbox:
            return error_page(404, "Not found", "The clock can only be moved in the sandbox.")
        f = ctx.fields()
        try:
            unit = forms.choice(f, "unit", "Unit", tuple(ADVANCE_LIMITS))
            n = forms.integer(f, "amount", "Advance by", lo=1, hi=ADVANCE_LIMITS[unit])
            by = dt.timedelta(hours=n) if unit == "hours" else dt.timedelta(days=n)
        except forms.FormError as exc:
            return await show_overview(ctx, error=refusal_message(exc), status=400)
        # The admin API's advance (every job due on the way runs once, in time order), in a worker
        # thread: the page comes back at once and shows the advance's progress.
        if not advancing.start(s, by, f"{n} {unit[:-1] if n == 1 else unit}"):
            return await show_overview(ctx, error="An advance is already running; wait for it to finish.",
                                       status=409)
        return ctx.redirect("/console")

    async def advance_progress(ctx: Ctx) -> Response:
        return JSONResponse(advancing.out())

    # -- users ---------------------------------------------------------------------------

    def users_view(uid: str) -> dict[str, Any]:
        listed = [user_out(u) for u in s.accounts.list_users(limit=USERS_SHOWN)]
        chosen = lookup_error = None
        login = None
        if uid:
            try:
                chosen = user_out(s.accounts.get(uid))
                login = s.logins.login_of(uid)
            except dom.DomainError as exc:
                lookup_error = refusal_message(exc)
        return {"users": listed, "chosen": chosen, "login": login, "lookup_error": lookup_error,
                "users_shown": USERS_SHOWN}

    async def show_users(ctx: Ctx, uid: str, *, error: str = "", status: int = 200) -> Response:
        done = DONE.get(ctx.request.query_params.get("done", ""), "")
        values = await ctx.call(users_view, uid)
        return ctx.render("console_users.html", status=status, error=error, flash="" if error else done,
                          uid=uid, **values)

    async def users(ctx: Ctx) -> Response:
        try:
            uid = forms.digits(dict(ctx.request.query_params), "uid", "UID", max_len=20, required=False)
        except forms.FormError as exc:
            return await show_users(ctx, "", error=str(exc), status=400)
        return await show_users(ctx, uid)

    def user_action(action: str) -> Any:
        async def handle(ctx: Ctx) -> Response:
            uid = ctx.request.path_params["uid"]
            if not (uid.isascii() and uid.isdigit() and len(uid) <= 20):
                return error_page(404, "Not found", "There is no such user.")
            try:
                f = ctx.fields()
                if action == "kyc":
                    await ctx.call(s.accounts.set_kyc, uid, forms.integer(f, "level", "KYC level", lo=0, hi=3))
                elif action == "web-login":
                    login = forms.text(f, "login", "Login", max_len=32, required=True)
                    password = forms.text(f, "password", "Password", max_len=128, required=True)
                    await ctx.call(s.logins.set_password, uid, login, password)
                else:
                    await ctx.call(s.accounts.set_frozen, uid, action == "freeze", [])
            except (forms.FormError, dom.DomainError) as exc:
                return await show_users(ctx, uid, error=refusal_message(exc), status=400)
            return ctx.redirect("/console/users", uid=uid, done=action)

        return handle

    # -- staking -------------------------------------------------------------------------

    def staking_view() -> dict[str, Any]:
        today = s.staking.today()
        products = []
        for cfg in s.staking.products():
            rates = rates_out(s, cfg.product, RATE_DAYS)
            products.append({"cfg": cfg, "rates": rates, "queue": queue_out(s, cfg.product),
                             "today_rate": rates[0]["rate"] if rates else None})
        return {"products": products, "today": today.isoformat()}

    async def show_staking(ctx: Ctx, *, error: str = "", status: int = 200) -> Response:
        done = DONE.get(ctx.request.query_params.get("done", ""), "")
        values = await ctx.call(staking_view)
        return ctx.render("console_staking.html", status=status, error=error, flash="" if error else done, **values)

    async def staking(ctx: Ctx) -> Response:
        return await show_staking(ctx)

    async def publish_rate(ctx: Ctx) -> Response:
        product = ctx.request.path_params["product"]
        if product not in {p.product for p in await ctx.call(s.staking.products)}:
            return error_page(404, "Not found", "There is no such staking product.")
        try:
            f = ctx.fields()
            day = forms.day(f, "day", "Day") or await ctx.call(s.staking.today)
            rate = forms.text(f, "rate", "APY", max_len=64, required=True)
            await ctx.call(publish, s, product, day.isoformat(), rate)
        except (forms.FormError, dom.DomainError) as exc:
            return await show_staking(ctx, error=refusal_message(exc), status=400)
        return ctx.redirect("/console/staking", done="rate")

    # -- market: index prices and DCD series ---------------------------------------------

    def market_view() -> dict[str, Any]:
        rows = [{**m, "pxAt": from_ms(int(m["pxTime"])).strftime("%Y-%m-%d %H:%M:%S") if m["pxTime"] else ""}
                for m in markets(s)]
        return {"markets": rows, "series": [series_out(r) for r in s.dcd.series()]}

    async def show_market(ctx: Ctx, *, error: str = "", status: int = 200) -> Response:
        done = DONE.get(ctx.request.query_params.get("done", ""), "")
        values = await ctx.call(market_view)
        return ctx.render("console_market.html", status=status, error=error, flash="" if error else done, **values)

    async def market(ctx: Ctx) -> Response:
        return await show_market(ctx)

    async def price(ctx: Ctx) -> Response:
        try:
            f = ctx.fields()
            inst_ids = [p.inst_id for p in await ctx.call(s.prices.paths)]
            inst_id = forms.choice(f, "instId", "Instrument", inst_ids)
            px = forms.text(f, "px", "Index price", max_len=64, required=True)
            await ctx.call(set_price, s, inst_id, px)
        except (forms.FormError, dom.DomainError) as exc:
            return await show_market(ctx, error=refusal_message(exc), status=400)
        return ctx.redirect("/console/market", done="price")

    return [
        Route("/console", page(web, home, who=OPERATOR), methods=["GET"]),
        Route("/console/clock/advance", page(web, advance, who=OPERATOR), methods=["POST"]),
        Route("/console/clock/progress", page(web, advance_progress, who=OPERATOR), methods=["GET"]),
        Route("/console/users", page(web, users, who=OPERATOR), methods=["GET"]),
        *[Route(f"/console/users/{{uid}}/{action}", page(web, user_action(action), who=OPERATOR), methods=["POST"])
          for action in ("kyc", "freeze", "unfreeze", "web-login")],
        Route("/console/staking", page(web, staking, who=OPERATOR), methods=["GET"]),
        Route("/console/staking/{product}/rate", page(web, publish_rate, who=OPERATOR), methods=["POST"]),
        Route("/console/market", page(web, market, who=OPERATOR), methods=["GET"]),
        Route("/console/market/price", page(web, price, who=OPERATOR), methods=["POST"]),
    ]
