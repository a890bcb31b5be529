"""``/broker/fd``: an FD broker's page (oauth-and-web.md 2): its code, types and ratios, its OAuth
clients (never a secret) and the users attributed to it with their daily rebate records. A user
that is not an FD broker gets a 403 page; ``/broker`` sends an FD broker that is not an ND broker
here."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stakehouse import errors as dom
from stakehouse.api.web.kit import USER, Ctx, Denied, Web, page
from stakehouse.money import fmt

#: Latest FD records shown.
RECORDS = 100


def routes(web: Web) -> list[Route]:
    s = web.services

    def view(uid: str) -> dict[str, Any]:
        try:
            fd = s.fd_brokers.get(uid)
        except dom.NotFound:
            raise Denied("This account is not an FD broker: the FD broker page is for FD brokers' accounts.") from None
        records = s.fd_brokers.records(uid, RECORDS)
        users: dict[str, dict[str, Any]] = {}
        for r in records:
            u = users.setdefault(r.uid, {"uid": r.uid, "types": set(), "affiliated": r.affiliated, "days": 0,
                                         "broker": 0, "user": 0})
            u["types"].add(r.broker_type)
            u["days"] += 1
            u["broker"] += r.broker_rebate
            u["user"] += r.user_rebate
        return {"fd": fd, "clients": s.oauth.clients(uid), "records": records, "users": list(users.values()),
                "fmt": fmt}

    async def fd_page(ctx: Ctx) -> Response:
        assert ctx.user is not None
        if ctx.user.is_sub:
            raise Denied("The broker page is for a broker's main account; a sub-account cannot open it.")
        return ctx.render("broker_fd.html", **await ctx.call(view, ctx.user.uid))

    return [Route("/broker/fd", page(web, fd_page, who=USER), methods=["GET"])]
