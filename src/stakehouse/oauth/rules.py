"""Pure rules of the OAuth 2.0 server (oauth-and-web.md sections 3 and 4): lifetimes, scopes,
redirect URIs, which routes a token may call, parameter lengths."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from urllib.parse import urlsplit

from stakehouse.errors import InvalidParameter

#: Authorization codes: single use, 10 minutes [decision].
CODE_TTL = dt.timedelta(minutes=10)
#: Access token 1 hour, refresh token 3 days [seed].
ACCESS_TTL = dt.timedelta(hours=1)
REFRESH_TTL = dt.timedelta(days=3)
SCOPES = ("read_only", "trade")
#: What each route permission needs of a token's scopes (withdraw: never reachable by token).
SCOPE_FOR = {"read": "read_only", "trade": "trade"}
#: Path prefixes (under /api/v5) a token never reaches: the ND sub-account module.
TOKEN_FORBIDDEN_PREFIXES = ("/broker/nd/", "/asset/broker/nd/", "/users/subaccount", "/asset/subaccount")
MAX_REDIRECT_URIS = 10
#: The longest value each OAuth parameter may have (53015 past it).
MAX_LENGTHS = {"client_id": 32, "client_secret": 128, "code": 128, "redirect_uri": 512, "scope": 64,
               "state": 256, "code_verifier": 128, "code_challenge": 128, "code_challenge_method": 8,
               "refresh_token": 128, "token": 128, "token_type_hint": 16, "grant_type": 32, "response_type": 16,
               "termId": 64}


class OAuthReason(StrEnum):
    """Why a bearer token or an OAuth call is refused (mapped to 53xxx by the OKX adapter)."""

    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason name) 53000
    CONSENT_WITHDRAWN = "consent_withdrawn"  # 53001
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 53002
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 53003
    ACCOUNT_FROZEN = "account_frozen"  # 53004
    INVALID_DEVICE = "invalid_device"  # 53006
    BOTH_CREDENTIALS = "both_credentials"  # 53009
    NO_PERMISSION = "no_permission"  # 53013
    INVALID_IP = "invalid_ip"  # 53014
    FAST_API_NOT_ENABLED = "fast_api_not_enabled"  # 53017
    NOT_OAUTH_BROKER = "not_oauth_broker"  # 53009 (client registration)


def parse_scopes(text: str, *, allowed: tuple[str, ...] = SCOPES) -> tuple[str, ...]:
    """Space-separated scopes, each known, in canonical order; ``read_only`` always included (as
    every OKX key reads)."""
    wanted = set(text.split())
    unknown = wanted - set(allowed)
    if unknown or not wanted:
        raise InvalidParameter("scope", "one or more of " + ", ".join(allowed))
    wanted.add("read_only")
    return tuple(s for s in SCOPES if s in wanted)


def check_redirect_uri(uri: str, *, sandbox: bool) -> str:
    """A redirect URI a client may register: absolute, no fragment, ``https`` (or ``http`` on a
    loopback host, or anywhere in the sandbox), or a custom scheme for a mobile app."""
    if not uri or len(uri) > MAX_LENGTHS["redirect_uri"] or not uri.isprintable() or " " in uri:
        raise InvalidParameter("redirectUris", "each an absolute URI of at most 512 characters")
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment:
        raise InvalidParameter("redirectUris", "absolute, without a fragment")
    if parts.scheme == "http" and not sandbox and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise InvalidParameter("redirectUris", "https, except on a loopback host")
    if parts.scheme in ("http", "https") and not parts.netloc:
        raise InvalidParameter("redirectUris", "needs a host")
    if parts.scheme.lower() in ("javascript", "data", "file", "vbscript"):
        raise InvalidParameter("redirectUris", "not a web or app scheme")
    return uri


def scope_allows(scopes: tuple[str, ...] | list[str], perm: str, path: str) -> bool:
    """Whether a token with ``scopes`` may call a route needing ``perm`` at ``path`` (under /api/v5):
    never a withdraw route or the ND sub-account module."""
    if perm not in SCOPE_FOR or path.startswith(TOKEN_FORBIDDEN_PREFIXES):
        return False
    return SCOPE_FOR[perm] in scopes


def too_long(values: dict[str, str]) -> tuple[str, int] | None:
    """The first parameter longer than it may be, with its limit."""
    for name, value in values.items():
        limit = MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            return name, limit
    return None
