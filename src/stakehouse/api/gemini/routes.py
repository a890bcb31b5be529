"""The six Gemini staking endpoints (spec sections 1-6): payload fields in, bare JSON out.

Handlers run on a worker thread (the services are blocking). They read parameters from the
payload only (never the body or the query), call the provider staking service, and render its
results; every amount is a JSON number written from its ``Decimal`` (``wire.num``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stakehouse.accounts.gemini_keys import GeminiAuthKey
from stakehouse.accounts.service import User
from stakehouse.api.gemini.auth import MOVE_ROLES, READ_ROLES
from stakehouse.api.gemini.errors import GeminiError, bad_field, missing_key
from stakehouse.api.gemini.wire import BadTimestamp, Stamp, epoch_ms, iso_ms, num, parse_stamp
from stakehouse.money import ZERO, AmountError, parse_amount
from stakehouse.staking.provider.service import (
    EventQuery,
    ProviderEvent,
    ProviderRate,
    RatePeriod,
    StakingBalance,
)
from stakehouse.wiring import Services

#: History page size: default and bounds (open point 4: out-of-range values are clamped).
DEFAULT_LIMIT, MAX_LIMIT = 50, 500

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_CCY = re.compile(r"[A-Za-z0-9]{1,16}\Z")
_INT = re.compile(r"-?[0-9]{1,12}\Z")


class Payload:
    """Strict reading of the decoded payload. ``null`` and ``""`` mean absent; unknown fields are
    ignored."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = {k: v for k, v in values.items() if v is not None and v != ""}

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def require(self, name: str, required: bool) -> Any:
        value = self.values.get(name)
        if value is None and required:
            raise missing_key(name)
        return value

    def provider_id(self, *, required: bool) -> str | None:
        """A provider UUID (case-insensitive, answered in lower case). Anything else names no
        product: 400 InvalidSymbol."""
        value = self.require("providerId", required)
        if value is None:
            return None
        if not isinstance(value, str) or not _UUID.match(value):
            shown = value[:64] if isinstance(value, str) else "(not a string)"
            raise GeminiError("InvalidSymbol", f"Unknown providerId '{shown}'")
        return value.lower()

    def currency(self, *, required: bool) -> str | None:
        value = self.require("currency", required)
        if value is None:
            return None
        if not isinstance(value, str) or not _CCY.match(value):
            shown = value[:32] if isinstance(value, str) else "(not a string)"
            raise GeminiError("InvalidSymbol", f"Unknown currency '{shown}'")
        return value.upper()

    def amount(self, max_amount: Decimal) -> Decimal:
        """A positive plain decimal: a string, or a JSON number read from its literal text."""
        value = self.require("amount", True)
        try:
            return parse_amount(value, scale=18, max_amount=max_amount)
        except AmountError as exc:
            shown = str(value)[:64] if isinstance(value, str | int) else "(not a number)"
            raise GeminiError("InvalidQuantity", f"Invalid amount '{shown}': {exc.reason}") from None

    def stamp(self, name: str, *, required: bool = False) -> Stamp | None:
        value = self.require(name, required)
        if value is None:
            return None
        try:
            return parse_stamp(value)
        except BadTimestamp as exc:
            raise GeminiError("InvalidTimestampInPayload", f"Payload field '{name}' is not a valid timestamp "
                                                           f"(ISO-8601 or epoch seconds/milliseconds): {exc}") from None

    def limit(self) -> int:
        value = self.values.get("limit")
        if value is None:
            return DEFAULT_LIMIT
        if isinstance(value, bool) or not isinstance(value, int | str) or not _INT.match(str(value)):
            raise bad_field("limit", "must be an integer")
        return min(max(int(value), 1), MAX_LIMIT)

    def flag(self, name: str) -> bool:
        value = self.values.get(name, False)
        if not isinstance(value, bool):
            raise bad_field(name, "must be a JSON boolean (true or false)")
        return value

    def window(self, *, since_required: bool) -> tuple[Stamp | None, Stamp | None]:
        since = self.stamp("since", required=since_required)
        until = self.stamp("until")
        if since is not None and until is not None and until.at < since.at:
            raise GeminiError("InvalidTimestampInPayload", "Payload field 'until' is before 'since'")
        return since, until


@dataclass(frozen=True)
class Call:
    """What a private handler gets: the services, the payload, the key and the account it acts on."""

    services: Services
    payload: Payload
    auth: GeminiAuthKey
    user: User


PrivateHandler = Callable[[Call], Any]
PublicHandler = Callable[[Services], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: ``None``: a public route; else the roles any one of which lets a key call it.
    roles: tuple[str, ...] | None
    private: PrivateHandler | None = None
    public: PublicHandler | None = None


# -- renderers ---------------------------------------------------------------------------


def balance_out(b: StakingBalance) -> dict[str, Any]:
    # Open point 12: staked funds are not tradable (available 0) and can all be unstaked.
    return {"type": "Staking", "currency": b.ccy, "balance": num(b.balance), "available": num(ZERO),
            "availableForWithdrawal": num(b.balance),
            "balanceByProvider": {pid: {"balance": num(v)} for pid, v in b.by_provider.items()}}


def event_out(e: ProviderEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"transactionId": e.transaction_id, "transactionType": e.type, "amountCurrency": e.ccy,
                           "amount": num(e.amount)}
    if e.price_ccy is not None and e.price is not None:
        out["priceCurrency"] = e.price_ccy
        out["priceAmount"] = num(e.price)
    out["dateTime"] = epoch_ms(e.at)
    return out


def history_out(events: list[ProviderEvent]) -> list[dict[str, Any]]:
    """Open point 5: the core filters, sorts and limits the flat list; we group it by provider in
    that order (a provider's first event places its group)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        groups.setdefault(e.provider_id, []).append(event_out(e))
    return [{"providerId": pid, "transactions": txs} for pid, txs in groups.items()]


def rate_out(r: ProviderRate) -> dict[str, Any]:
    out: dict[str, Any] = {"providerId": r.provider_id, "rate": num(r.rate_bps), "apyPct": num(r.apy_pct),
                           "ratePct": num(r.rate_pct)}
    if r.deposit_usd_limit is not None:  # no limit: the field is left out (no integer says "unlimited")
        out["depositUsdLimit"] = num(r.deposit_usd_limit)
    return out


def period_out(p: RatePeriod) -> dict[str, Any]:
    return {"providerId": p.provider_id, "currency": p.ccy, "apyPct": num(p.apy_pct), "ratePct": num(p.rate_pct),
            "numberOfAccruals": p.count, "accrualTotal": num(p.total), "firstAccrualAt": iso_ms(p.first_at),
            "lastAccrualAt": iso_ms(p.last_at)}


# -- handlers ----------------------------------------------------------------------------


def balances(call: Call) -> list[dict[str, Any]]:
    return [balance_out(b) for b in call.services.provider_staking.balances(call.user.uid)]


def _product(call: Call) -> tuple[str, str, Decimal]:
    p = call.payload
    for name in ("providerId", "currency", "amount"):  # absent fields first, in the documented order
        p.require(name, True)
    provider = p.provider_id(required=True)
    ccy = p.currency(required=True)
    assert provider is not None and ccy is not None
    return provider, ccy, p.amount(call.services.settings.max_amount)


def stake(call: Call) -> dict[str, Any]:
    provider, ccy, amount = _product(call)
    r = call.services.provider_staking.stake(call.user.uid, provider, ccy, amount)
    # Open point 8: accrualTotal is sent (0 on a new stake), rates is {"rate": bps}.
    return {"transactionId": r.transaction_id, "providerId": r.provider_id, "currency": r.ccy,
            "amount": num(r.amount), "accrualTotal": num(r.accrual_total), "rates": {"rate": num(r.rate_bps)}}


def unstake(call: Call) -> dict[str, Any]:
    provider, ccy, amount = _product(call)
    r = call.services.provider_staking.unstake(call.user.uid, provider, ccy, amount)
    return {"transactionId": r.transaction_id, "amount": num(r.amount), "amountPaidSoFar": num(r.paid),
            "amountRemaining": num(r.remaining), "currency": r.ccy, "requestInitiated": iso_ms(r.requested_at)}


def history(call: Call) -> list[dict[str, Any]]:
    p = call.payload
    since, until = p.window(since_required=False)
    query = EventQuery(since=since.at if since else None, until=until.last if until else None, limit=p.limit(),
                       provider_id=p.provider_id(required=False), ccy=p.currency(required=False),
                       interest_only=p.flag("interestOnly"), sort_asc=p.flag("sortAsc"))
    return history_out(call.services.provider_staking.history(call.user.uid, query))


def rewards(call: Call) -> dict[str, Any]:
    p = call.payload
    since, until = p.window(since_required=True)
    assert since is not None
    summaries = call.services.provider_staking.rewards(call.user.uid, since.at, until.last if until else None,
                                                      p.provider_id(required=False), p.currency(required=False))
    out: dict[str, dict[str, Any]] = {}
    for s in summaries:
        # Open point 9: the top-level total is the sum of the periods returned (the service's total).
        out.setdefault(s.provider_id, {})[s.ccy] = {
            "providerId": s.provider_id, "currency": s.ccy, "accrualTotal": num(s.total),
            "ratePeriods": [period_out(period) for period in s.periods]}
    return out


def rates(services: Services) -> dict[str, Any]:
    """Open point 7: every rate; query parameters are ignored."""
    out: dict[str, dict[str, Any]] = {}
    for r in services.provider_staking.rates():
        out.setdefault(r.provider_id, {})[r.ccy] = rate_out(r)
    return out


ALL: list[Route] = [
    Route("POST", "/v1/balances/staking", READ_ROLES, private=balances),
    Route("POST", "/v1/staking/stake", MOVE_ROLES, private=stake),
    Route("POST", "/v1/staking/unstake", MOVE_ROLES, private=unstake),
    Route("POST", "/v1/staking/history", READ_ROLES, private=history),
    Route("POST", "/v1/staking/rewards", READ_ROLES, private=rewards),
    Route("GET", "/v1/staking/rates", None, public=rates),
]
