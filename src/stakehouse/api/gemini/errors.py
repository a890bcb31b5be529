"""Gemini error replies: the one reason table (HTTP status, default message) and the mapping of
domain errors (spec section 7.5).

A reply is ``{"result": "error", "reason": <reason>, "message": <text>}``. ccxt raises by the
exact ``reason`` first, then by the exact message, then by message fragments, so messages never
equal another reason's name and never contain ccxt's "broad" phrases (``Internal Server Error``
would turn a 500 into ``ExchangeNotAvailable``).
"""

from __future__ import annotations

from stakehouse import errors as dom
from stakehouse.staking.provider.rules import ProviderReason

#: reason -> (HTTP status, default message).
REASONS: dict[str, tuple[int, str]] = {
    "MissingApikeyHeader": (400, "Missing X-GEMINI-APIKEY header"),
    "MissingPayloadHeader": (400, "Missing X-GEMINI-PAYLOAD header"),
    "MissingSignatureHeader": (400, "Missing X-GEMINI-SIGNATURE header"),
    "InvalidApiKey": (400, "Invalid API key"),
    "InvalidSignature": (400, "InvalidSignature"),
    "InvalidJson": (400, "The X-GEMINI-PAYLOAD header is not base64 of a JSON object"),
    # 400 when the payload names no endpoint; 404 (status given) for an unknown route or method.
    "EndpointNotFound": (400, "No endpoint was specified in the payload's 'request' field"),
    "EndpointMismatch": (400, "The payload's 'request' names a different endpoint than the one called"),
    "MissingNonce": (400, "The payload has no 'nonce' field"),
    "InvalidNonce": (400, "Invalid nonce"),
    "MissingRole": (403, "The API key lacks the role this endpoint needs"),
    "RemoteAddressForbidden": (403, "Calls from this IP address are not allowed for this API key"),
    "AccountFrozen": (403, "The account is frozen"),
    "MissingAccounts": (400, "Expected a JSON payload with accounts"),
    "InvalidAccountName": (400, "The account name is not valid for this API key"),
    "MissingPayloadKey": (400, "A required payload field is missing"),
    "InvalidQuantity": (400, "Invalid amount"),
    "InvalidSymbol": (400, "Unknown or unsupported staking product"),
    "InvalidTimestampInPayload": (400, "Invalid timestamp in payload"),
    "InvalidRequest": (400, "The request cannot be carried out"),
    "InsufficientFunds": (406, "Insufficient funds"),
    "RateLimit": (429, "Requests were made too frequently; slow down and retry"),
    "System": (500, "We are experiencing technical issues; please try again later"),
    "Maintenance": (503, "The system is down for maintenance"),
}


class GeminiError(Exception):
    """A Gemini error reply with its reason's HTTP status (or ``status`` when given)."""

    def __init__(self, reason: str, message: str | None = None, *, status: int | None = None) -> None:
        default_status, default_message = REASONS[reason]
        self.reason = reason
        self.status = status if status is not None else default_status
        self.message = message if message is not None else default_message
        super().__init__(f"{reason}: {self.message}")


def endpoint_not_found(path: str) -> GeminiError:
    """An unknown route under ``/v1``, or a known one called with the wrong method (open point 17)."""
    return GeminiError("EndpointNotFound", f"API entry point {path[:128]} not found", status=404)


def missing_key(field: str) -> GeminiError:
    return GeminiError("MissingPayloadKey", f"The payload is missing the required field '{field}'")


def bad_field(field: str, detail: str) -> GeminiError:
    """A field of the wrong JSON type (a string for a boolean, a word for a limit, ...)."""
    return GeminiError("InvalidJson", f"Payload field '{field}' {detail}")


#: ``InvalidParameter.field`` -> reason, for fields the core validates itself.
_FIELD_REASONS = {
    "amount": "InvalidQuantity",
    "amt": "InvalidQuantity",
    "providerId": "InvalidSymbol",
    "provider_id": "InvalidSymbol",
    "currency": "InvalidSymbol",
    "ccy": "InvalidSymbol",
    "since": "InvalidTimestampInPayload",
    "until": "InvalidTimestampInPayload",
    "account": "InvalidAccountName",
}


def from_domain(exc: dom.DomainError) -> GeminiError:
    """Our mapping of the core's errors (interface table; the rest chosen and documented here):

    - amount refusals (``InvalidParameter("amount")``, ``AmountNotPositive``) and every provider
      staking refusal (``ProviderReason``: over the monthly USD limit, no price) -> 400
      ``InvalidQuantity`` with the core's message;
    - ``NotFound`` (unknown provider/currency, not offered) -> 400 ``InvalidSymbol``;
    - ``InsufficientBalance`` -> 406 ``InsufficientFunds``;
    - ``AccountRequired`` -> 400 ``MissingAccounts``; ``UnknownAccount`` -> 400 ``InvalidAccountName``;
    - ``AccountFrozen`` -> 403 ``AccountFrozen`` (Gemini documents no reason for it; 403 is its
      "not allowed for this caller" status, and ccxt raises ``ExchangeError``);
    - ``MissingParameter`` -> 400 ``MissingPayloadKey``;
    - ``InvalidParameter`` on another field -> that field's reason above, else 400 ``InvalidJson``;
    - any other ``DomainError`` (``NotAllowed``, ``Conflict``, ...) -> 400 ``InvalidRequest`` with the
      core's message (no Gemini reason fits; ccxt raises ``ExchangeError``).
    """
    if isinstance(exc, dom.InsufficientBalance):
        return GeminiError("InsufficientFunds", exc.message)
    if isinstance(exc, dom.AmountNotPositive) or (
            isinstance(exc, dom.Refused) and isinstance(exc.reason, ProviderReason)):
        return GeminiError("InvalidQuantity", exc.message)
    if isinstance(exc, dom.NotFound):
        return GeminiError("InvalidSymbol", exc.message)
    if isinstance(exc, dom.AccountRequired):
        return GeminiError("MissingAccounts", exc.message)
    if isinstance(exc, dom.UnknownAccount):
        return GeminiError("InvalidAccountName", exc.message)
    if isinstance(exc, dom.AccountFrozen):
        return GeminiError("AccountFrozen", exc.message)
    if isinstance(exc, dom.MissingParameter):
        return missing_key(exc.field)
    if isinstance(exc, dom.InvalidParameter):
        return GeminiError(_FIELD_REASONS.get(exc.field, "InvalidJson"), exc.message)
    return GeminiError("InvalidRequest", exc.message)
