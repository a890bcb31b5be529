"""``/oauth/authorize``: the OAuth consent page (oauth-and-web.md section 3). The user signs in if
needed, sees the app, its broker's scopes and (with Fast API) the API key it would create, and
approves or denies. Authlib validates the request and builds the redirect with ``code`` and
``state`` (or ``error=access_denied``); this page only asks the person."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import OAuth2Error
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stakehouse.api.oauth.server import FormRequest, error_envelope
from stakehouse.api.web import forms
from stakehouse.api.web.kit import CSP, USER, Ctx, Web, error_page, page
from stakehouse.errors import NotFound
from stakehouse.oauth import rules

#: The longest authorization request accepted (its query string).
MAX_QUERY = 2048


def _redirect(result: tuple[int, Any, Any]) -> Response:
    _status, _body, headers = result
    return RedirectResponse(dict(headers).get("Location", "/"), status_code=302)


def routes(web: Web, server: Any) -> list[Route]:
    s = web.services

    def oauth_request(ctx: Ctx, query: str) -> FormRequest:
        values = dict(parse_qsl(query, keep_blank_values=True))
        req = FormRequest("GET", str(ctx.request.url), ctx.request.headers, values, {})
        req.user = ctx.user
        return req

    def problem(error: OAuth2Error) -> Response:
        _, body = error_envelope(error, "authorization_code")
        return error_page(400, "This app's request cannot be used", f"{body['msg']} (code {body['code']}).")

    async def consent_form(ctx: Ctx) -> Response:
        query = ctx.request.url.query
        if len(query) > MAX_QUERY:
            return error_page(400, "This app's request cannot be used", "The request is too long (code 53015).")
        values = dict(parse_qsl(query, keep_blank_values=True))
        long = rules.too_long(values)
        if long is not None:
            return error_page(400, "This app's request cannot be used",
                              f"Parameter {long[0]} length cannot exceed {long[1]} (code 53015).")
        req = oauth_request(ctx, query)
        try:
            grant = await ctx.call(server.get_consent_grant, req, ctx.user)
        except OAuth2Error as error:
            if error.redirect_uri:  # the client and its redirect URI are known: tell the app
                return _redirect(server.handle_error_response(req, error))
            return problem(error)
        client = grant.client.client
        scope = rules.parse_scopes(req.payload.scope or " ".join(client.scopes))
        response = ctx.render("consent.html", client=client, scopes=scope, query=query,
                              broker_uid=client.broker_uid)
        # The approval redirects to the app: the form's target must allow it (CSP form-action).
        target = urlsplit(grant.redirect_uri or client.redirect_uris[0])
        origin = f"{target.scheme}://{target.netloc}" if target.netloc else f"{target.scheme}:"
        response.headers["content-security-policy"] = ctx_csp(origin)
        return response

    async def consent(ctx: Ctx) -> Response:
        query = ctx.field("q")
        if len(query) > MAX_QUERY:
            return error_page(400, "This app's request cannot be used", "The request is too long (code 53015).")
        req = oauth_request(ctx, query)
        req.fast_api = ctx.field("fastApi") == "1"
        approved = ctx.field("decision") == "approve"
        try:
            grant = await ctx.call(server.get_consent_grant, req, ctx.user)  # checked again: nothing from the form
            result = await ctx.call(server.create_authorization_response, req, ctx.user if approved else None, grant)
        except OAuth2Error as error:
            if error.redirect_uri:
                return _redirect(server.handle_error_response(req, error))
            return problem(error)
        return _redirect(result)

    async def apps(ctx: Ctx) -> Response:
        """Revoke an app from the Account page: later calls with its tokens get 53001."""
        assert ctx.user is not None
        try:
            grant_id = forms.digits(ctx.fields(), "grantId", "App", max_len=12)
        except forms.FormError as exc:
            return error_page(400, "Bad form", str(exc))
        try:
            await ctx.call(s.oauth.revoke_by_user, ctx.user.uid, int(grant_id))
        except NotFound:
            return error_page(404, "Not found", "There is no such authorised app.")
        return ctx.redirect("/account", done="app")

    return [
        Route("/oauth/authorize", page(web, consent_form, who=USER), methods=["GET"]),
        Route("/oauth/authorize", page(web, consent, who=USER), methods=["POST"]),
        Route("/account/apps/revoke", page(web, apps, who=USER), methods=["POST"]),
    ]


def ctx_csp(origin: str) -> str:
    """The pages' policy, with the app's redirect origin allowed as a form target."""
    return CSP.replace("form-action 'self'", f"form-action 'self' {origin}")
