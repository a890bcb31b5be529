"""Domain errors: what went wrong in business terms, independent of any wire protocol.

Services raise these; each protocol adapter translates them into its own codes (the OKX
adapter keeps that table in ``api/okx/errors.py``).
"""

from __future__ import annotations

from enum import StrEnum


class DomainError(Exception):
    """Base of every expected, client-caused failure. Nothing was changed when it is raised."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class InvalidParameter(DomainError):
    """A request value is malformed or out of range."""

    def __init__(self, field: str, reason: str = "") -> None:
        super().__init__(f"Parameter {field} error" + (f": {reason}" if reason else ""), field=field)
        self.field = field
        self.reason = reason


class MissingParameter(DomainError):
    def __init__(self, field: str) -> None:
        super().__init__(f"Parameter {field} can not be empty.", field=field)
        self.field = field


class InsufficientBalance(DomainError):
    def __init__(self, ccy: str) -> None:
        super().__init__(f"Insufficient {ccy} balance", ccy=ccy)
        self.ccy = ccy


class AccountFrozen(DomainError):
    """The user is frozen globally or for the function asked for."""

    def __init__(self, uid: str, function: str) -> None:
        super().__init__(f"Account {uid} is frozen for {function}", uid=uid, function=function)
        self.function = function


class NotFound(DomainError):
    def __init__(self, what: str, ident: str = "") -> None:
        super().__init__(f"{what} {ident} does not exist" if ident else f"{what} does not exist", what=what)
        self.what = what


class SameAccount(DomainError):
    """A transfer whose source and destination are the same account."""

    def __init__(self) -> None:
        super().__init__("The From parameter cannot be the same as the To parameter.")


class NotAllowed(DomainError):
    """The caller may not do this (wrong account kind, feature off, production-only, ...)."""


class Conflict(DomainError):
    """The request clashes with existing state (duplicate name, reused id with other data)."""


class AmountNotPositive(DomainError):
    """An amount of zero or below where a positive one is needed."""

    def __init__(self, field: str) -> None:
        super().__init__(f"Parameter {field} must be greater than 0", field=field)
        self.field = field


class TransferTypeNotAllowed(DomainError):
    """The transfer ``type`` does not fit the caller (master key with 3/4, sub key with 1/2)."""

    def __init__(self, caller_is_sub: bool) -> None:
        kind = "Sub-account" if caller_is_sub else "Main account"
        super().__init__(f"{kind} API key does not support current transfer 'type' parameter.")
        self.caller_is_sub = caller_is_sub


class TransferOutNotAllowed(DomainError):
    def __init__(self, sub_name: str) -> None:
        super().__init__(f"{sub_name} Sub-account has no permission to transfer out, please set first.",
                         subAcct=sub_name)


# -- refusals ----------------------------------------------------------------------------


class Refused(DomainError):
    """A request a product's rules refuse. ``reason`` is a member of that product's reason enum,
    defined beside its rules (``staking.rules.StakingReason``, ``staking.provider.rules.ProviderReason``,
    ``broker.rules.BrokerReason``, ``funding.rules.FundingReason``); each protocol adapter maps the
    reasons to its own codes in one table per enum (OKX: ``api/okx/errors.py: REFUSAL_CODES``)."""

    def __init__(self, reason: StrEnum, message: str, **params: str) -> None:
        super().__init__(message, **params)
        self.reason = reason


# -- accounts addressed by name (Gemini keys) ---------------------------------------------


class AccountRequired(DomainError):
    """A key covering several accounts (a master key) was used without naming one."""

    def __init__(self) -> None:
        super().__init__("Expected a JSON payload with accounts")


class UnknownAccount(DomainError):
    """The account named is not one this key may act for."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Account name '{name[:64]}' is not a valid account for this API key", account=name[:64])
        self.name = name
