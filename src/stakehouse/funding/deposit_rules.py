"""Pure rules of the sandbox chain simulator's deposits and of chain settings (no I/O, no clock).

A deposit sent on chain at ``created`` gains one confirmation every ``block_seconds``. It is
credited (state 1) when it has ``credit`` confirmations and succeeds (state 2) at ``unlock``
confirmations. Confirmations are computed when read, never stored as they grow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from stakehouse.errors import InvalidParameter
from stakehouse.money import round_down

#: Deposit states of the OKX API that the simulator uses.
WAITING = 0
CREDITED = 1
SUCCESS = 2
FROZEN = 12
#: States a deposit can still move out of (by the clock).
PENDING_STATES = (WAITING, CREDITED)
#: At most this many deposit addresses per (user, currency, chain).
MAX_ADDRESSES = 20
#: Beneficiary account types of deposit addresses (``to``): 6 funding, 18 trading.
BENEFICIARIES = (6, 18)

MAX_CONFIRMATIONS = 10_000
MAX_BLOCK_SECONDS = 86_400


def confirmations_at(*, state: int, created_at: dt.datetime, block_seconds: int, unlock: int,
                     now: dt.datetime) -> int:
    """The confirmations a deposit shows at ``now``: one per block since it was sent, capped at
    the unlock count; a successful deposit shows the unlock count; with no blocks (internal or
    operator credits) nothing is counted."""
    if state == SUCCESS:
        return unlock
    if block_seconds <= 0 or now <= created_at:
        return 0
    blocks = int((now - created_at).total_seconds()) // block_seconds
    return min(unlock, blocks)


def due_at(created_at: dt.datetime, confirmations: int, block_seconds: int) -> dt.datetime:
    """When a deposit sent at ``created_at`` reaches ``confirmations``."""
    return created_at + dt.timedelta(seconds=confirmations * block_seconds)


@dataclass(frozen=True)
class Step:
    """What a deposit due at ``due`` becomes: its state, when it moves next (``None``: final)."""

    state: int
    next_at: dt.datetime | None


def credit_step(*, created_at: dt.datetime, unlock: int, block_seconds: int, due: dt.datetime,
                frozen: bool) -> Step:
    """The step at the credit moment: frozen for deposits -> 12 (not credited, final); else
    credited, and successful at once when the unlock count is already reached."""
    if frozen:
        return Step(FROZEN, None)
    unlock_at = due_at(created_at, unlock, block_seconds)
    return Step(SUCCESS, None) if unlock_at <= due else Step(CREDITED, unlock_at)


# -- chain settings (admin) ---------------------------------------------------------------


@dataclass(frozen=True)
class ChainSettings:
    """The operator-set values of a chain, validated together by :func:`validate_settings`."""

    confirmations: int
    unlock_confirmations: int
    fee: Decimal
    min_dep: Decimal
    min_wd: Decimal
    max_wd: Decimal
    block_seconds: int
    can_dep: bool
    can_wd: bool


def validate_settings(s: ChainSettings, *, scale: int) -> None:
    """Raise :class:`InvalidParameter` naming the first bad field: confirmations 1..10000, unlock
    at least the credit count, fee >= 0, minimums > 0, maxWd >= minWd, amounts with at most the
    currency's decimals, 1..86400 seconds per block."""
    if not 1 <= s.confirmations <= MAX_CONFIRMATIONS:
        raise InvalidParameter("confirmations", f"1..{MAX_CONFIRMATIONS}")
    if not s.confirmations <= s.unlock_confirmations <= MAX_CONFIRMATIONS:
        raise InvalidParameter("unlockConfirmations", f"confirmations..{MAX_CONFIRMATIONS}")
    for field, value, positive in (("fee", s.fee, False), ("minDep", s.min_dep, True), ("minWd", s.min_wd, True),
                                   ("maxWd", s.max_wd, True)):
        if value < 0 or (positive and value == 0):
            raise InvalidParameter(field, "must be greater than 0" if positive else "must not be negative")
        if round_down(value, scale) != value:
            raise InvalidParameter(field, f"at most {scale} decimals")
    if s.max_wd < s.min_wd:
        raise InvalidParameter("maxWd", "must not be below minWd")
    if not 1 <= s.block_seconds <= MAX_BLOCK_SECONDS:
        raise InvalidParameter("blockSeconds", f"1..{MAX_BLOCK_SECONDS}")
