"""``/earn``: liquid staking (ETH -> BETH, SOL -> OKSOL) and Gemini-style provider staking.

Products with today's APY and its history, the user's balances, accrued rewards and a chart of
daily rewards; purchase, redeem and cancel forms that call the same service methods as the OKX
routes (so the rules and the messages are the API's); the order history with filters and paging.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stakehouse import errors as dom
from stakehouse.api.okx.routes.staking import STAKING_ERRORS
from stakehouse.api.web import forms
from stakehouse.api.web.kit import USER, Ctx, Web, error_page, page, refusal_message
from stakehouse.clock import MAX_MS, from_ms, to_ms
from stakehouse.money import fmt
from stakehouse.staking.liquid.service import ORDER_STATUSES, ORDER_TYPES, HistoryQuery
from stakehouse.staking.provider.service import EventQuery

#: Days of APY history on the chart.
APY_DAYS = 30
#: Rows of order history a page.
HISTORY_PAGE = 20
DONE = {
    "purchase": "Purchase received: the tokens are in your funding account.",
    "redeem": "Redemption requested: it is in the queue (or paid at once when fast redemption applied).",
    "cancel": "Redemption cancelled: the tokens are back in your funding account.",
    "stake": "Staked with the provider.",
    "unstake": "Unstake requested.",
}


def chart(x: list[dt.datetime], series: list[tuple[str, list[Decimal]]], *, bars: bool = False) -> dict[str, Any]:
    """The data a ``figure.chart`` draws: x in Unix seconds, each series' values as exact strings."""
    return {"x": [to_ms(t) // 1000 for t in x], "bars": bars, "fill": not bars,
            "series": [{"label": label, "y": [fmt(v) for v in ys]} for label, ys in series]}


def pct(rate: Decimal) -> str:
    """A rate (0.0312) as a percentage with two decimals (3.12)."""
    return f"{(rate * 100).quantize(Decimal('0.01'))}"


def routes(web: Web) -> list[Route]:
    s = web.services

    def products() -> list[str]:
        return [p.product for p in s.staking.products()]

    def history_query(ctx: Ctx) -> tuple[str, HistoryQuery]:
        q = dict(ctx.request.query_params)
        names = products()
        product = forms.choice(q, "product", "Product", names, default=names[0] if names else "")
        kind = forms.choice(q, "type", "Type", ("", *ORDER_TYPES), default="")
        status = forms.choice(q, "status", "Status", ("", *ORDER_STATUSES), default="")
        # ``after`` as in the API: orders requested before this moment (the next, older page)
        after = forms.digits(q, "after", "Page cursor", max_len=15, required=False)
        if after and int(after) > MAX_MS:
            raise forms.FormError("Page cursor", "is past the year 9999")
        return product, HistoryQuery(type=kind, status=status, after=from_ms(int(after)) if after else None,
                                     limit=HISTORY_PAGE)

    def view(ctx: Ctx) -> dict[str, Any]:
        assert ctx.user is not None
        uid = ctx.user.uid
        liquid = []
        for cfg in s.staking.products():
            apy = s.staking.apy_history(cfg.product, APY_DAYS)
            rewards = s.staking.rewards_of(uid, cfg.product)[-APY_DAYS:]
            balance = s.staking.balance(uid, cfg.product)
            pending = s.staking.history(uid, cfg.product, HistoryQuery(type="redeem", status="pending", limit=50))
            liquid.append({
                "cfg": cfg, "apy": pct(apy[0][1]) if apy else None,
                "apy_rows": [(t.strftime("%Y-%m-%d"), pct(r)) for t, r in apy],
                "apy_chart": chart([t for t, _ in reversed(apy)], [("APY %", [r * 100 for _, r in reversed(apy)])]),
                "balance": balance, "pending": pending,
                "reward_rows": [(r["day"], fmt(r["net"])) for r in reversed(rewards)],
                "reward_chart": chart([dt.datetime.fromisoformat(r["day"]).replace(tzinfo=dt.UTC) for r in rewards],
                                      [(f"{cfg.token_ccy} reward", [r["net"] for r in rewards])], bars=True),
            })
        try:
            product, query = history_query(ctx)
            history_error = ""
        except forms.FormError as exc:
            product, query, history_error = (products() or [""])[0], HistoryQuery(limit=HISTORY_PAGE), str(exc)
        history = s.staking.history(uid, product, query) if product else []
        events = s.provider_staking.history(uid, EventQuery(limit=20))
        return {
            "liquid": liquid, "history": history, "history_product": product, "history_query": query,
            "history_error": history_error,
            "next_after": to_ms(history[-1].request_time) if len(history) == HISTORY_PAGE else None,
            "rates": s.provider_staking.rates(), "stakes": s.provider_staking.balances(uid), "events": events,
            "fmt": fmt, "to_ms": to_ms,
        }

    async def show(ctx: Ctx, *, error: str = "", status: int = 200) -> Response:
        done = DONE.get(ctx.request.query_params.get("done", ""), "")
        values = await ctx.call(view, ctx)
        return ctx.render("earn.html", status=status, error=error, flash="" if error else done, **values)

    async def earn(ctx: Ctx) -> Response:
        return await show(ctx)

    def liquid_action(action: str) -> Any:
        async def handle(ctx: Ctx) -> Response:
            assert ctx.user is not None
            product = ctx.request.path_params["product"]
            if product not in await ctx.call(products):
                return error_page(404, "Not found", "There is no such staking product.")
            uid = ctx.user.uid
            try:
                if action == "cancel":
                    ord_id = forms.digits(ctx.fields(), "ordId", "Order id", max_len=20)
                    await ctx.call(s.staking.cancel, uid, product, ord_id)
                else:
                    amt = forms.amount(ctx.fields(), "amt", "Amount", max_amount=s.settings.max_amount)
                    await ctx.call(getattr(s.staking, action), uid, product, amt)
            except (forms.FormError, dom.DomainError) as exc:
                return await show(ctx, error=refusal_message(exc, STAKING_ERRORS), status=400)
            return ctx.redirect("/earn", done=action)

        return handle

    def provider_action(action: str) -> Any:
        async def handle(ctx: Ctx) -> Response:
            assert ctx.user is not None
            try:
                f = ctx.fields()
                pairs = {(r.provider_id, r.ccy) for r in await ctx.call(s.provider_staking.rates)}
                key = forms.choice(f, "product", "Product", sorted(f"{p}:{c}" for p, c in pairs))
                provider_id, ccy = key.split(":", 1)
                amount = forms.amount(f, "amount", "Amount", max_amount=s.settings.max_amount)
                await ctx.call(getattr(s.provider_staking, action), ctx.user.uid, provider_id, ccy, amount)
            except (forms.FormError, dom.DomainError) as exc:
                return await show(ctx, error=refusal_message(exc), status=400)
            return ctx.redirect("/earn", done=action)

        return handle

    return [
        Route("/earn", page(web, earn, who=USER), methods=["GET"]),
        *[Route(f"/earn/{{product}}/{action}", page(web, liquid_action(action), who=USER), methods=["POST"])
          for action in ("purchase", "redeem", "cancel")],
        *[Route(f"/earn/provider/{action}", page(web, provider_action(action), who=USER), methods=["POST"])
          for action in ("stake", "unstake")],
    ]
