"""Withdrawal rules (pure): what a valid withdrawal request is, what it costs, and how the sandbox
chain simulator moves it from state to state. No I/O, no clock, no database.

States (OKX ``asset/withdrawal-history``): ``10`` waiting transfer, ``0`` waiting withdrawal,
``7`` approved, ``1`` broadcasting, ``2`` success, ``-1`` failed, ``-2`` canceled. The
simulator uses 0 -> (7 ->) 1 -> 2: an on-chain withdrawal waits ``withdrawal_review_seconds``
in 0, is approved and broadcast at once (1, with a transaction id), and succeeds once the chain
has produced the chain's confirmation count of blocks after the broadcast.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from stakehouse.assets.rules import Chain
from stakehouse.errors import InvalidParameter, Refused
from stakehouse.funding.addresses import XRP, is_valid_address
from stakehouse.funding.rules import FundingReason
from stakehouse.money import fmt, round_down

WAITING_TRANSFER = 10
WAITING = 0
APPROVED = 7
BROADCASTING = 1
SUCCESS = 2
FAILED = -1
CANCELED = -2

#: Every state the history routes accept as a filter (the document's list; the simulator uses
#: only some of them).
STATE_FILTER = (10, 0, 4, 5, 6, 8, 9, 12, 7, 1, 15, 16, -3, -2, -1, 2)
#: A user may cancel before the broadcast.
CANCELLABLE = frozenset({WAITING_TRANSFER, WAITING, APPROVED})
#: The operator may fail a withdrawal until it has succeeded on chain.
FAILABLE = CANCELLABLE | {BROADCASTING}
FINAL = frozenset({SUCCESS, FAILED, CANCELED})

INTERNAL = 3
ON_CHAIN = 4
DESTINATIONS = (INTERNAL, ON_CHAIN)

#: ``toAddrType``: 1 address / account name, 2 uid (internal withdrawals only).
ADDR_TYPE_ADDRESS = 1
ADDR_TYPE_UID = 2

_XRP_TAG = re.compile(r"^[0-9]{1,10}$")
_TAG = re.compile(r"^[A-Za-z0-9]{1,32}$")
_UID = re.compile(r"^[0-9]{1,20}$")
_SUB_NAME = re.compile(r"^[A-Za-z0-9]{1,32}$")
MAX_XRP_TAG = 2**32 - 1


# -- request validation --------------------------------------------------------------------


def split_to_addr(to_addr: str) -> tuple[str, str]:
    """``"address:tag"`` -> (address, tag); a plain address -> (address, "")."""
    addr, sep, tag = to_addr.partition(":")
    if not addr or (sep and not tag) or ":" in tag:
        raise InvalidParameter("toAddr", "expected an address, or address:tag")
    return addr, tag


def check_tag(chain: Chain, tag: str) -> str:
    """The tag (memo) of an on-chain withdrawal: required on tag chains, refused elsewhere."""
    if not chain.need_tag:
        if tag:
            raise InvalidParameter("toAddr", f"{chain.chain} takes no tag")
        return ""
    if not tag:
        raise InvalidParameter("toAddr", f"a tag is required on {chain.chain}: send address:tag")
    if chain.address_format == XRP:
        if not _XRP_TAG.match(tag) or int(tag) > MAX_XRP_TAG:
            raise InvalidParameter("toAddr", f"the tag must be an integer 0..{MAX_XRP_TAG}")
    elif not _TAG.match(tag):
        raise InvalidParameter("toAddr", "the tag must be 1..32 letters or digits")
    return tag


def check_address(chain: Chain, addr: str) -> str:
    if not is_valid_address(chain.address_format, addr):
        raise InvalidParameter("toAddr", f"not a valid {chain.chain} address")
    return addr


def check_chain(chain: Chain, dest: int) -> None:
    if dest == ON_CHAIN and not chain.can_wd:
        raise InvalidParameter("chain", f"withdrawals on {chain.chain} are suspended")
    if dest == INTERNAL and not chain.can_internal:
        raise InvalidParameter("chain", f"internal transfers of {chain.chain} are suspended")


def check_amount(chain: Chain, amt: Decimal, dest: int) -> None:
    """Precision (``wdTickSz`` decimals) for every withdrawal; ``minWd``/``maxWd`` for on-chain ones."""
    if amt <= 0:
        raise InvalidParameter("amt", "must be greater than 0")
    if round_down(amt, chain.wd_tick_sz) != amt:
        raise InvalidParameter("amt", f"at most {chain.wd_tick_sz} decimals on {chain.chain}")
    if dest != ON_CHAIN:
        return
    if amt < chain.min_wd:
        raise Refused(FundingReason.BELOW_MIN_WITHDRAWAL, f"The minimum withdrawal on {chain.chain} is "
                      f"{fmt(chain.min_wd)} {chain.ccy}", minWd=fmt(chain.min_wd))
    if amt > chain.max_wd:
        raise Refused(FundingReason.ABOVE_MAX_WITHDRAWAL, f"The maximum withdrawal on {chain.chain} is "
                      f"{fmt(chain.max_wd)} {chain.ccy}", maxWd=fmt(chain.max_wd))


def withdrawal_fee(chain: Chain, dest: int) -> Decimal:
    """What the platform charges on top of ``amt``, in ``ccy``: the chain's fee on chain, 0 inside."""
    return chain.fee if dest == ON_CHAIN else Decimal(0)


def check_sent_fee(chain: Chain, dest: int, sent: Decimal | None) -> None:
    """ccxt sends ``fee`` (from ``asset/currencies``): it must be the chain's fee. An internal
    withdrawal costs nothing; there ``0`` or the chain's fee is accepted (and 0 charged)."""
    if sent is None:
        return
    allowed = {chain.fee} if dest == ON_CHAIN else {chain.fee, Decimal(0)}
    if sent not in allowed:
        raise InvalidParameter("fee", f"the withdrawal fee on {chain.chain} is {fmt(withdrawal_fee(chain, dest))}")


def check_addr_type(dest: int, to_addr_type: int | None) -> None:
    if to_addr_type is None:
        return
    if to_addr_type not in (ADDR_TYPE_ADDRESS, ADDR_TYPE_UID) or (
            to_addr_type == ADDR_TYPE_UID and dest != INTERNAL):
        raise InvalidParameter("toAddrType", "1, or 2 (uid) with dest 3")


@dataclass(frozen=True)
class InternalTarget:
    """Who an internal withdrawal (dest 3) goes to: a uid or a sub-account name."""

    uid: str = ""
    sub_name: str = ""


def internal_target(to_addr: str, to_addr_type: int | None) -> InternalTarget:
    if _UID.match(to_addr):
        return InternalTarget(uid=to_addr)
    if to_addr_type != ADDR_TYPE_UID and _SUB_NAME.match(to_addr):
        return InternalTarget(sub_name=to_addr)
    raise Refused(FundingReason.BAD_INTERNAL_ADDRESS, "The internal transfer address is illegal: give the uid or "
                  "the sub-account name of another user of the platform")


def to_addr_type(dest: int, to_addr: str) -> int:
    """The ``toAddrType`` history shows: 2 for an internal withdrawal to a uid, else 1."""
    return ADDR_TYPE_UID if dest == INTERNAL and _UID.match(to_addr) else ADDR_TYPE_ADDRESS


# -- the simulator's transitions --------------------------------------------------------------


def review_due(created_at: dt.datetime, review_seconds: int) -> dt.datetime:
    """When a new on-chain withdrawal leaves state 0 (approved and broadcast)."""
    return created_at + dt.timedelta(seconds=review_seconds)


def settle_due(broadcast_at: dt.datetime, confirmations: int, block_seconds: int) -> dt.datetime:
    """When a broadcast withdrawal has its confirmations and succeeds."""
    return broadcast_at + dt.timedelta(seconds=confirmations * block_seconds)


@dataclass(frozen=True)
class Step:
    """One transition of the simulator: from ``old`` to ``new``, next due at ``next_at``
    (``None`` once final)."""

    old: int
    new: int
    next_at: dt.datetime | None


def next_step(state: int, due: dt.datetime, *, confirmations: int, block_seconds: int) -> Step:
    """What happens to a withdrawal in ``state`` when its ``next_at`` (``due``) comes."""
    if state in CANCELLABLE:
        return Step(state, BROADCASTING, settle_due(due, confirmations, block_seconds))
    if state == BROADCASTING:
        return Step(state, SUCCESS, None)
    raise ValueError(f"a withdrawal in state {state} does not move")


def confirmations_at(broadcast_at: dt.datetime | None, block_seconds: int, required: int,
                     now: dt.datetime) -> int:
    """Blocks seen since the broadcast, capped at ``required``."""
    if broadcast_at is None:
        return 0
    if block_seconds <= 0:
        return required
    elapsed = max(0, int((now - broadcast_at).total_seconds()))
    return min(required, elapsed // block_seconds)
