"""Pure ledger rules: what a valid journal entry is. No I/O."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

FUNDING = 6
TRADING = 18
SYSTEM = 0
USER_ACCOUNT_TYPES = (FUNDING, TRADING)
#: A user's staking balance with a staking provider (provider-staking products, rules section 9)
#: is account type ``STAKING_BASE + provider_no``: one account per (user, provider, currency).
STAKING_BASE = 1000


def staking_type(provider_no: int) -> int:
    if provider_no <= 0:
        raise ValueError(f"bad provider number {provider_no}")
    return STAKING_BASE + provider_no


def is_user_type(acct_type: int) -> bool:
    return acct_type in USER_ACCOUNT_TYPES or acct_type > STAKING_BASE

AVAILABLE = "available"
LOCKED = "locked"

#: The platform's own accounts. ``True`` = may go negative (the counterpart of user money that
#: lives outside the ledger: coins in custody, rewards receivable from the chain, minted tokens).
SYSTEM_ACCOUNTS: dict[str, bool] = {
    "custody": True,  # on-chain holdings: deposits in, withdrawals out
    "issuance": True,  # liquid tokens minted (BETH, OKSOL, ...)
    "validator_rewards": True,  # staking rewards receivable from the chain
    "staked_principal": False,  # staked assets held for liquid-token holders
    "fees": False,  # platform fee income (staking service fees)
    "withdrawal_fees": False,  # withdrawal fee income
    "demo_faucet": True,  # demo-environment funds (ND broker set-subaccount-assets)
    "market_maker": True,  # the spot market's counterparty: what users buy from and sell to it
    "trading_fees": False,  # spot trading fee income at the level's base rates
    "broker_markup": False,  # the part of spot fees above the base rates (ND brokers' markup)
    "fee_credits": True,  # spot fees paid by contract credits (a platform expense)
    "nd_rebates": True,  # ND brokers' daily rebates paid (a platform expense)
    "dcd_book": True,  # the DCD book: takes subscriptions, pays settlements (the platform's option P&L)
    "fd_rebates": True,  # FD brokers' and their users' daily rebates paid (a platform expense)
}


@dataclass(frozen=True, order=True)
class AccountRef:
    owner: str  # "u:<uid>" or "s:<system name>"
    acct_type: int
    ccy: str

    @staticmethod
    def user(uid: str, acct_type: int, ccy: str) -> AccountRef:
        if not is_user_type(acct_type):
            raise ValueError(f"unknown user account type {acct_type}")
        return AccountRef(f"u:{uid}", acct_type, ccy)

    @staticmethod
    def system(name: str, ccy: str) -> AccountRef:
        if name not in SYSTEM_ACCOUNTS:
            raise ValueError(f"unknown system account {name}")
        return AccountRef(f"s:{name}", SYSTEM, ccy)

    @property
    def uid(self) -> str | None:
        return self.owner[2:] if self.owner.startswith("u:") else None

    @property
    def allow_negative(self) -> bool:
        return self.uid is None and SYSTEM_ACCOUNTS[self.owner[2:]]


@dataclass(frozen=True)
class Leg:
    """One posting of an entry: a signed amount on one bucket of one account."""

    account: AccountRef
    amount: Decimal
    bucket: str = AVAILABLE


class UnbalancedEntry(ValueError):
    pass


def check_balanced(legs: Iterable[Leg]) -> None:
    """Raise unless the legs sum to zero in every currency and none is zero or malformed."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    count = 0
    for leg in legs:
        count += 1
        if leg.bucket not in (AVAILABLE, LOCKED):
            raise UnbalancedEntry(f"unknown bucket {leg.bucket}")
        if leg.amount == 0:
            raise UnbalancedEntry("zero posting")
        totals[leg.account.ccy] += leg.amount
    if count < 2:
        raise UnbalancedEntry("an entry needs at least two postings")
    for ccy, total in totals.items():
        if total != 0:
            raise UnbalancedEntry(f"entry does not balance in {ccy}: {total}")


def apply_legs(
    balances: dict[AccountRef, tuple[Decimal, Decimal]], legs: Iterable[Leg]
) -> dict[AccountRef, tuple[Decimal, Decimal]]:
    """New (available, locked) per touched account. Raises :class:`Overdraft` where a user
    account (or a system account that may not) would go below zero."""
    result = dict(balances)
    for leg in legs:
        available, locked = result[leg.account]
        if leg.bucket == AVAILABLE:
            available += leg.amount
        else:
            locked += leg.amount
        result[leg.account] = (available, locked)
    for ref, (available, locked) in result.items():
        if not ref.allow_negative and (available < 0 or locked < 0):
            raise Overdraft(ref)
    return result


class Overdraft(Exception):
    def __init__(self, account: AccountRef) -> None:
        super().__init__(f"{account} would go negative")
        self.account = account


def reversal_legs(legs: Iterable[Leg]) -> list[Leg]:
    """The compensating legs of an entry: every posting negated."""
    return [Leg(leg.account, -leg.amount, leg.bucket) for leg in legs]
