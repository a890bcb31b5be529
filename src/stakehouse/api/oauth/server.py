"""The OAuth 2.0 authorization server: Authlib's grants (RFC 6749 code grant, RFC 7636 PKCE, the
refresh token grant, RFC 7009 revocation, RFC 8414 metadata) on the storage of
:class:`stakehouse.oauth.service.OAuthService`. Written here: the models Authlib asks for, the
request object, and the 53xxx error envelope. No grant logic.

Everything here is synchronous (Authlib's API is); the endpoints call it in a worker thread.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from stakehouse.api.okx.errors import CODES
from stakehouse.oauth import rules
from stakehouse.oauth.service import Client, Code, OAuthService, TokenPair
from stakehouse.wiring import Services

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class ClientModel(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: Client) -> None:
        self.client = client
        self.client_id = client.client_id

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str:
        return self.client.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return " ".join(self.client.scopes)
        return " ".join(s for s in rules.SCOPES if s in scope.split() and s in self.client.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact match (53016 otherwise)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.secret_ok(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.client.public else method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


class CodeModel:
    def __init__(self, code: Code) -> None:
        self.code = code
        self.code_challenge = code.code_challenge
        self.code_challenge_method = code.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.code.redirect_uri

    def get_scope(self) -> str:
        return self.code.scope


class TokenModel:
    def __init__(self, pair: TokenPair) -> None:
        self.pair = pair

    def check_client(self, client: ClientModel) -> bool:
        return self.pair.grant.client_id == client.client_id

    def get_scope(self) -> str:
        return self.pair.grant.scope

    def is_expired(self) -> bool:
        return False  # the service returns live pairs only

    def is_revoked(self) -> bool:
        return self.pair.revoked_at is not None or self.pair.superseded_at is not None


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth request from Starlette's parsed query and form (and its case-insensitive headers)."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], query: Mapping[str, str],
                 form: Mapping[str, str]) -> None:
        # TLS ends at the proxy in production and the sandbox is plain HTTP: Authlib's transport
        # check would refuse the latter, and it guards nothing the proxy does not.
        super().__init__(method, "https://" + uri.split("://", 1)[-1], headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = BasicOAuth2Payload({**self._args, **self._form})
        #: Set by the consent page: the user also allowed a Fast API key.
        self.fast_api = False

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with ``S256`` only, and required of public clients at the authorization request."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        if grant.request.client.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': a public client must use PKCE")


def build_server(services: Services) -> AuthorizationServer:
    oauth: OAuthService = services.oauth

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

        def validate_requested_scope(self) -> None:
            super().validate_requested_scope()
            scope = self.request.payload.scope
            if scope and not set(scope.split()) <= set(self.request.client.client.scopes):
                raise InvalidScopeError("The scope is beyond what the client may ask for")

        def save_authorization_code(self, code: str, request: FormRequest) -> None:
            data = request.payload.data
            scope = " ".join(rules.parse_scopes(request.payload.scope or " ".join(request.client.client.scopes)))
            oauth.save_code(code, client_id=request.client.client_id, uid=request.user.uid,
                            redirect_uri=data.get("redirect_uri") or request.client.get_default_redirect_uri(),
                            scope=scope, code_challenge=data.get("code_challenge"),
                            code_challenge_method=data.get("code_challenge_method"), fast_api=request.fast_api)

        def query_authorization_code(self, code: str, client: ClientModel) -> CodeModel | None:
            found = oauth.code(code, client.client_id)
            return CodeModel(found) if found else None

        def delete_authorization_code(self, authorization_code: CodeModel) -> None:
            pass  # redeemed atomically with the first token pair (save_token)

        def authenticate_user(self, authorization_code: CodeModel) -> Any:
            return services.accounts.get(authorization_code.code.uid)

    class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> TokenModel | None:
            pair = oauth.refresh_token(refresh_token, self.request.client.client_id)
            return TokenModel(pair) if pair else None

        def authenticate_user(self, refresh_token: TokenModel) -> Any:
            return services.accounts.get(refresh_token.pair.grant.uid)

        def revoke_old_credential(self, refresh_token: TokenModel) -> None:
            pass  # superseded atomically with storing the new pair (save_token)

    class Revocation(RevocationEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = AUTH_METHODS

        def query_token(self, token_string: str, token_type_hint: str | None) -> TokenModel | None:
            pair = oauth.find_token(token_string)
            return TokenModel(pair) if pair else None

        def revoke_token(self, token: TokenModel, request: FormRequest) -> None:
            oauth.revoke_pair(token.pair)

    class Server(AuthorizationServer):  # type: ignore[misc]
        def query_client(self, client_id: str) -> ClientModel | None:
            found = oauth.client(client_id)
            return ClientModel(found) if found else None

        def save_token(self, token: dict[str, Any], request: FormRequest) -> None:
            term_id = request.payload.data.get("termId") or None
            if request.payload.grant_type == "refresh_token":
                oauth.rotate(request.refresh_token.pair, access=token["access_token"], refresh=token["refresh_token"])
            else:
                oauth.issue_for_code(request.authorization_code.code, access=token["access_token"],
                                     refresh=token["refresh_token"], term_id=term_id)

        def create_oauth2_request(self, request: FormRequest) -> FormRequest:
            return request

        def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
            return status, body, headers

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            pass

    server = Server(scopes_supported=list(rules.SCOPES))
    server.register_token_generator("default", BearerTokenGenerator(
        access_token_generator=lambda **_: _token(), refresh_token_generator=lambda **_: _token(),
        expires_generator=lambda client, grant_type: int(rules.ACCESS_TTL.total_seconds())))
    server.register_grant(CodeGrant, [S256Challenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_endpoint(Revocation)
    return server


def _token() -> str:
    return secrets.token_urlsafe(32)


_PARAM = re.compile(r"'([A-Za-z_]+)'")


def error_envelope(error: OAuth2Error, grant_type: str) -> tuple[int, dict[str, Any]]:
    """An OAuth error in the OKX envelope with its 53xxx code (and the RFC 6749 ``error`` fields,
    so that generic OAuth client libraries understand it)."""
    name = error.error or "invalid_request"
    description = error.description or ""
    found = _PARAM.search(description)
    param = found.group(1) if found else ""
    params: dict[str, str] = {}
    if name == "invalid_client" or name == "unauthorized_client":
        code = "53009"
    elif "redirect" in description.lower():
        code = "53016"
    elif name == "invalid_request" and description.startswith("Missing") and param:
        code, params = "53011", {"param0": param}
    elif "challenge" in description or "code_verifier" in description:
        code, params = "53010", {"param0": "code_verifier"}
    elif name == "invalid_grant":
        code = "53005" if grant_type == "refresh_token" else "53012"
    elif name == "unsupported_grant_type":
        code, params = "53010", {"param0": "grant_type"}
    elif name == "invalid_scope":
        code, params = "53010", {"param0": "scope"}
    elif name == "invalid_request" and param:
        code, params = "53010", {"param0": param}
    else:
        code = "53009"
    status, template = CODES[code]
    return status, {"code": code, "msg": template.format(**params) if params else template, "data": [],
                    "error": name, "error_description": description}


def refusal_envelope(code: str, **params: str) -> tuple[int, dict[str, Any]]:
    status, template = CODES[code]
    rfc = {"53015": "invalid_request", "53011": "invalid_request", "53010": "invalid_request"}.get(code,
                                                                                                 "invalid_grant")
    msg = template.format(**params) if params else template
    return status, {"code": code, "msg": msg, "data": [], "error": rfc, "error_description": msg}
