"""``/broker``: an ND broker's page (oauth-and-web.md 2).

Its sub-accounts a page at a time, each with its API keys (never a secret), and a form to create
one; the fee-rate changes it set and a form to set one; its sub-accounts' latest deposits and
withdrawals; the daily rebate records of the last 30 days as a table and a bar chart; rebate
detail files (ask for one, download the finished ones through their signed links, served by
``api/files.py``). Every figure comes from the same service call as the OKX route that shows it,
with the route's parameters; every form calls the route's service method, so the rules and the
refusals are the API's.

Only an ND broker's main account may open the page: the broker service refuses a sub-account
(59604) and a user that is not a broker (59608); both get a 403 page. An FD broker that is not an
ND broker is sent to its own page, ``/broker/fd`` (``fd_broker.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stakehouse import errors as dom
from stakehouse.api.web import forms
from stakehouse.api.web.earn import chart
from stakehouse.api.web.kit import USER, Ctx, Denied, Web, page, refusal_message
from stakehouse.broker.rules import CHG_TYPES, INST_TYPES
from stakehouse.clock import to_ms
from stakehouse.funding.deposits import DepositQuery
from stakehouse.funding.withdrawals import WithdrawalQuery
from stakehouse.money import ZERO, fmt
from stakehouse.rebates import rules as rebate_rules
from stakehouse.rebates.service import RecordQuery

#: Sub-accounts a page.
SUBS_PAGE = 20
#: Latest deposits, withdrawals and fee changes shown.
LATEST = 20
#: Days of daily rebate records on the table and the chart.
REBATE_DAYS = 30
#: Rebate records read a page (the API's largest ``limit``) and at most this many pages for the chart.
REBATE_PAGE, REBATE_PAGES = 100, 20
#: Form limits: the OKX route's ``subAcct`` and ``label``, a fee value.
SUB_NAME_MAX, LABEL_MAX, VALUE_MAX = 32, 50, 32
#: A ``Host`` header a link may name (the OKX adapter's rule for its own links).
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")

DONE = {
    "create": "Sub-account created.",
    "fee": "Fee change recorded: it takes effect from its effective date (00:00 Hong Kong time).",
    "file": "Rebate detail file requested: it is listed below and can be downloaded once it is written.",
    "file_again": "That file was requested before: it is listed below.",
}
#: OKX deposit and withdrawal states, as words (the states the simulator uses).
DEPOSIT_STATES = {0: "waiting for confirmation", 1: "credited", 2: "successful", 8: "pending", 11: "frozen",
                  12: "frozen", 13: "frozen", 14: "frozen"}
WITHDRAWAL_STATES = {10: "waiting transfer", 0: "waiting withdrawal", 7: "approved", 1: "broadcasting",
                     2: "successful", -1: "failed", -2: "cancelled"}


def _yyyymmdd(day: dt.date) -> str:
    return f"{day:%Y%m%d}"


def _dash(day: str) -> str:
    """``20260102`` -> ``2026-01-02``."""
    return f"{day[:4]}-{day[4:6]}-{day[6:]}" if len(day) == 8 else day


def routes(web: Web) -> list[Route]:
    s = web.services

    def require_broker(ctx: Ctx) -> Any:
        """The broker's info; a sub-account or a user that is not an ND broker gets a 403 page."""
        assert ctx.user is not None
        try:
            return s.broker.info(ctx.user.uid)
        except dom.DomainError as exc:
            if ctx.user.is_sub:
                raise Denied("The broker page is for a broker's main account; a sub-account cannot open it "
                             f"({refusal_message(exc)}).") from None
            raise Denied("This account is not a broker: the broker page is for ND brokers' main accounts "
                         f"({refusal_message(exc)}).") from None

    def base_url(ctx: Ctx) -> str:
        """Where download links point: ``public_url``, else this request's host (as the OKX route)."""
        host = ctx.request.headers.get("host", "")
        host = host if _HOST.fullmatch(host) else "localhost"
        return s.settings.public_url or f"{ctx.request.url.scheme}://{host}"

    def rebates(uid: str) -> dict[str, Any]:
        today = rebate_rules.hkt_day(s.clock.now())
        query = RecordQuery(begin=_yyyymmdd(today - dt.timedelta(days=REBATE_DAYS - 1)), limit=REBATE_PAGE)
        first = s.rebates.daily(uid, query)
        records = list(first.records)
        for n in range(2, min(first.total_pages, REBATE_PAGES) + 1):
            records += s.rebates.daily(uid, RecordQuery(begin=query.begin, page=n, limit=REBATE_PAGE)).records
        by_day: dict[str, Decimal] = {}
        for r in records:
            by_day[r.rebate_date] = by_day.get(r.rebate_date, ZERO) + r.income
        # every day of the window on the chart (a day without records: 0), so its axis spans the 30 days
        days = [today - dt.timedelta(days=n) for n in range(REBATE_DAYS - 1, -1, -1)]
        x = [dt.datetime.combine(d, dt.time(), dt.UTC) for d in days]
        ys = [by_day.get(_yyyymmdd(d), ZERO) for d in days]
        return {
            "rebate_rows": first.records, "rebate_total": first.total_income, "rebate_more": first.total_pages > 1,
            "rebate_chart": chart(x, [("Rebate (USDT)", ys)], bars=True) if by_day else chart([], []),
            "rebate_chart_rows": [(_dash(d), fmt(by_day[d])) for d in sorted(by_day, reverse=True)],
        }

    def view(ctx: Ctx) -> dict[str, Any]:
        assert ctx.user is not None
        info = require_broker(ctx)
        uid = ctx.user.uid
        try:
            number = forms.integer(dict(ctx.request.query_params), "page", "Page", lo=1, hi=10**9, default=1)
            page_error = ""
        except forms.FormError as exc:
            number, page_error = 1, str(exc)
        subs = s.broker.list_subs(uid, page=number, limit=SUBS_PAGE)
        keys = {sub.user.uid: s.broker.keys(uid, sub.user.sub_name or "") for sub in subs.details}
        names = {sub.user.uid: sub.user.sub_name or "" for sub in s.broker.all_subs(uid, include_deleted=True)}
        fees = list(reversed(s.broker.fee_history(uid)))[:LATEST]
        deposits = s.chain.broker_deposit_history(uid, "", DepositQuery(limit=LATEST))
        withdrawals = s.withdrawals.broker_history(uid, "", WithdrawalQuery(limit=LATEST))
        files = s.rebate_files.files(uid, "nd", base_url(ctx))
        today = rebate_rules.hkt_day(s.clock.now())
        return {
            "info": info, "subs": subs, "keys": keys, "page_error": page_error, "names": names, "fees": fees,
            "deposits": deposits, "withdrawals": withdrawals, "files": files, **rebates(uid),
            "inst_types": INST_TYPES, "chg_types": CHG_TYPES, "deposit_states": DEPOSIT_STATES,
            "withdrawal_states": WITHDRAWAL_STATES, "today": today.isoformat(),
            "yesterday": (today - dt.timedelta(days=1)).isoformat(), "fmt": fmt, "to_ms": to_ms, "dash": _dash,
        }

    async def show(ctx: Ctx, *, error: str = "", status: int = 200) -> Response:
        done = DONE.get(ctx.request.query_params.get("done", ""), "")
        values = await ctx.call(view, ctx)
        return ctx.render("broker.html", status=status, error=error, flash="" if error else done,
                          form=ctx.fields() if error else {}, **values)

    def fd_only(uid: str) -> bool:
        """An FD broker that is not an ND broker (its page is /broker/fd)."""
        try:
            s.broker.info(uid)
            return False
        except dom.DomainError:
            pass
        try:
            s.fd_brokers.get(uid)
            return True
        except dom.NotFound:
            return False

    async def broker(ctx: Ctx) -> Response:
        assert ctx.user is not None
        if not ctx.user.is_sub and await ctx.call(fd_only, ctx.user.uid):
            return ctx.redirect("/broker/fd")
        return await show(ctx)

    async def create_sub(ctx: Ctx) -> Response:
        assert ctx.user is not None
        uid, f = ctx.user.uid, ctx.fields()
        try:
            name = forms.text(f, "subAcct", "Sub-account name", max_len=SUB_NAME_MAX, required=True)
            label = forms.text(f, "label", "Label", max_len=LABEL_MAX)
            await ctx.call(s.broker.create_sub, uid, sub_name=name, label=label)
        except (forms.FormError, dom.DomainError) as exc:
            return await show(ctx, error=refusal_message(exc), status=400)
        return ctx.redirect("/broker", done="create")

    async def set_fee(ctx: Ctx) -> Response:
        assert ctx.user is not None
        uid, f = ctx.user.uid, ctx.fields()
        try:
            name = forms.text(f, "subAcct", "Sub-account name", max_len=SUB_NAME_MAX)
            inst_type = forms.text(f, "instType", "Instrument type", max_len=VALUE_MAX)
            chg_type = forms.text(f, "chgType", "Change type", max_len=VALUE_MAX)
            chg_taker = forms.text(f, "chgTaker", "Taker change", max_len=VALUE_MAX)
            chg_maker = forms.text(f, "chgMaker", "Maker change", max_len=VALUE_MAX)
            eff = forms.day(f, "effDate", "Effective date")
            await ctx.call(s.broker.set_fee_rate, uid, sub_name=name, inst_type=inst_type, chg_type=chg_type,
                           chg_taker=chg_taker, chg_maker=chg_maker, eff_date=_yyyymmdd(eff) if eff else "")
        except (forms.FormError, dom.DomainError) as exc:
            return await show(ctx, error=refusal_message(exc), status=400)
        return ctx.redirect("/broker", done="fee")

    async def request_file(ctx: Ctx) -> Response:
        assert ctx.user is not None
        uid, f = ctx.user.uid, ctx.fields()
        try:
            begin = forms.day(f, "begin", "First day", required=True)
            end = forms.day(f, "end", "End day", required=True)
            assert begin is not None and end is not None
            existed, _ = await ctx.call(s.rebate_files.request, uid, "nd", begin, end)
        except (forms.FormError, dom.DomainError) as exc:
            return await show(ctx, error=refusal_message(exc), status=400)
        return ctx.redirect("/broker", done="file_again" if existed else "file")

    return [
        Route("/broker", page(web, broker, who=USER), methods=["GET"]),
        Route("/broker/sub-accounts", page(web, create_sub, who=USER), methods=["POST"]),
        Route("/broker/fee-rate", page(web, set_fee, who=USER), methods=["POST"]),
        Route("/broker/rebate-files", page(web, request_file, who=USER), methods=["POST"]),
    ]
