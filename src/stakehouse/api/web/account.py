"""``/account``: the signed-in user's API keys (create with the one-time display of the secret and
passphrase, revoke), web login, and the apps authorised through OAuth (revoked by
``/account/apps/revoke`` in ``oauth.py``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stakehouse import errors as dom
from stakehouse.accounts.rules import PERMISSIONS
from stakehouse.api.web import forms
from stakehouse.api.web.kit import USER, Ctx, Web, page, refusal_message
from stakehouse.money import fmt


def routes(web: Web) -> list[Route]:
    s = web.services

    def view(uid: str) -> dict[str, Any]:
        return {"keys": s.accounts.list_keys(uid), "login": s.logins.login_of(uid), "fmt": fmt,
                "permissions": PERMISSIONS, "apps": s.oauth.grants_of(uid)}

    async def show(ctx: Ctx, *, error: str = "", status: int = 200, created: Any = None, flash: str = "") -> Response:
        assert ctx.user is not None
        values = await ctx.call(view, ctx.user.uid)
        return ctx.render("account.html", status=status, error=error, flash=flash, created=created, **values)

    async def account(ctx: Ctx) -> Response:
        done = ctx.request.query_params.get("done", "")
        return await show(ctx, flash={"revoke": "The key was revoked; requests signed with it are refused now.",
                                      "app": "Access revoked: the app's tokens are refused now (53001)."}.get(done, ""))

    async def create_key(ctx: Ctx) -> Response:
        assert ctx.user is not None
        try:
            perms = forms.checkboxes(ctx.texts("perm"), "Permissions", PERMISSIONS)
            label = forms.text(ctx.fields(), "label", "Label", max_len=50)
            ips = [i for i in forms.text(ctx.fields(), "ips", "IP allow-list", max_len=400).replace(",", " ").split()
                   if i]
            created = await ctx.call(s.accounts.create_key, ctx.user.uid, perms=perms or ["read_only"], ips=ips,
                                     label=label)
        except (forms.FormError, dom.DomainError) as exc:
            return await show(ctx, error=refusal_message(exc), status=400)
        # Shown on this response only (no redirect, no-store): the secret is never rendered again.
        return await show(ctx, created=created, flash="Key created. Copy the secret key and passphrase now: "
                          "they are shown only once.")

    async def revoke_key(ctx: Ctx) -> Response:
        assert ctx.user is not None
        uid = ctx.user.uid
        try:
            api_key = forms.text(ctx.fields(), "apiKey", "API key", max_len=64, required=True)
            await ctx.call(s.accounts.revoke_key, api_key, "revoked by the user", owner=uid)
        except (forms.FormError, dom.DomainError) as exc:
            return await show(ctx, error=refusal_message(exc), status=400)
        return ctx.redirect("/account", done="revoke")

    return [
        Route("/account", page(web, account, who=USER), methods=["GET"]),
        Route("/account/keys", page(web, create_key, who=USER), methods=["POST"]),
        Route("/account/keys/revoke", page(web, revoke_key, who=USER), methods=["POST"]),
    ]
