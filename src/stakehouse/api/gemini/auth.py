"""Gemini private-call authentication pieces (spec sections 7.1-7.4), pure: headers, the
HMAC-SHA384 signature over the payload header text, the payload, the route match, nonces, roles.

The pipeline that runs them in order, with the database calls between, is in ``app.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stakehouse.api.gemini.errors import GeminiError
from stakehouse.api.gemini.wire import loads

APIKEY_HEADER = "x-gemini-apikey"
PAYLOAD_HEADER = "x-gemini-payload"
SIGNATURE_HEADER = "x-gemini-signature"

#: Longest API key worth a lookup (ours are ``account-`` / ``master-`` plus 20 characters).
MAX_API_KEY = 64

#: A time-based nonce must be within this many seconds of server time (spec section 7.2).
NONCE_WINDOW_SECONDS = 30

#: Nonces are stored in microseconds; the core needs them below 9 * 10^12 (seconds or ms).
NONCE_LIMIT = 9 * 10**12

#: Roles that may read staking data, and roles that may move funds (spec section 7.4).
READ_ROLES = ("Trader", "FundManager", "Auditor")
MOVE_ROLES = ("Trader", "FundManager")


@dataclass(frozen=True)
class Headers:
    api_key: str
    payload: str
    signature: str


def read_headers(headers: dict[str, str]) -> Headers:
    """The three auth headers, the first absent (or empty) one deciding the error."""
    api_key = headers.get(APIKEY_HEADER, "")
    payload = headers.get(PAYLOAD_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not api_key:
        raise GeminiError("MissingApikeyHeader")
    if not payload:
        raise GeminiError("MissingPayloadHeader")
    if not signature:
        raise GeminiError("MissingSignatureHeader")
    return Headers(api_key, payload, signature)


def sign(secret: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA384 of the payload header text, keyed with the API secret."""
    return hmac.new(secret.encode(), payload.encode("latin-1"), hashlib.sha384).hexdigest()


def signature_ok(secret: str, payload: str, given: str) -> bool:
    """Constant-time comparison over the exact header text; the hex is case-insensitive."""
    expected = sign(secret, payload).encode()
    return hmac.compare_digest(expected, given.lower().encode("latin-1", "replace"))


def decode_payload(payload: str) -> dict[str, Any]:
    """The payload header: base64 (standard alphabet) of a UTF-8 JSON object. Numbers keep their
    source text (see ``wire.loads``)."""
    try:
        raw = base64.b64decode(payload.encode("latin-1"), validate=True)
        value = loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):  # RecursionError: absurd nesting
        raise GeminiError("InvalidJson") from None
    if not isinstance(value, dict):
        raise GeminiError("InvalidJson", "The payload must be a JSON object")
    return value


def _route_part(text: str) -> str:
    text = text.split("?", 1)[0]
    return text[1:] if text.startswith("/") else text


def check_request(payload: dict[str, Any], path: str) -> None:
    """The payload's ``request`` must name the route called: one leading ``/`` and any query are
    ignored on both sides."""
    request = payload.get("request")
    if request is None or request == "":
        raise GeminiError("EndpointNotFound")
    if not isinstance(request, str) or _route_part(request) != _route_part(path):
        shown = request[:128] if isinstance(request, str) else "(not a string)"
        raise GeminiError("EndpointMismatch", f"The payload's request '{shown}' does not match the endpoint "
                                              f"{path} that was called")


@dataclass(frozen=True)
class Nonce:
    text: str  # as sent (for messages)
    value: Decimal  # exact

    @property
    def micros(self) -> int:
        return int(self.value * 1_000_000)


_NONCE = re.compile(r"[0-9]{1,13}(?:\.[0-9]{1,6})?\Z")


def parse_nonce(payload: dict[str, Any]) -> Nonce:
    """``nonce``: a JSON integer, or a string or JSON number of at most 13 digits with up to 6
    decimals (seconds with a fraction, or milliseconds), positive and below 9 * 10^12."""
    raw = payload.get("nonce")
    if raw is None:
        raise GeminiError("MissingNonce")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise GeminiError("InvalidNonce", "Nonce must be an integer or a numeric string")
    text = str(raw)
    shown = text[:32]
    if not _NONCE.match(text):
        raise GeminiError("InvalidNonce", f"Nonce '{shown}' is not a positive number "
                                          f"(an integer, or seconds with up to 6 decimals)")
    value = Decimal(text)
    if value <= 0:
        raise GeminiError("InvalidNonce", f"Nonce '{shown}' must be greater than zero")
    if value >= NONCE_LIMIT:
        raise GeminiError("InvalidNonce", f"Nonce '{shown}' is too large")
    return Nonce(text, value)


def not_increased(nonce: Nonce) -> GeminiError:
    return GeminiError("InvalidNonce", f"Nonce '{nonce.text}' has not increased since your last call "
                                       f"to the Gemini API.")


def outside_window(nonce: Nonce, server_seconds: int) -> GeminiError:
    return GeminiError("InvalidNonce", f"Nonce '{nonce.text}' is not within {NONCE_WINDOW_SECONDS} seconds "
                                       f"of server time '{server_seconds}'")


def in_window(nonce: Nonce, server_micros: int) -> bool:
    """A time-based key's nonce (Unix seconds, fraction allowed) against a server time."""
    return abs(nonce.micros - server_micros) <= NONCE_WINDOW_SECONDS * 1_000_000


def check_roles(needed: tuple[str, ...], held: tuple[str, ...], api_key: str) -> None:
    if any(role in held for role in needed):
        return
    need, has = ", ".join(needed), ", ".join(held)
    raise GeminiError("MissingRole", f"To access this endpoint, assign one of these roles [{need}] to API key "
                                     f"{api_key[:MAX_API_KEY]} which currently has roles [{has}]")
