"""Funding's refusal reasons, shared by its deposit and withdrawal rules (pure: the kernel only)."""

from __future__ import annotations

from enum import StrEnum


class FundingReason(StrEnum):
    """Why a deposit-address or withdrawal request is refused (each adapter maps these to its codes)."""

    NOT_IN_DEMO = "not_in_demo"
    SUB_ACCOUNT_NO_WITHDRAWAL = "sub_account_no_withdrawal"
    ABOVE_MAX_WITHDRAWAL = "above_max_withdrawal"
    BELOW_MIN_WITHDRAWAL = "below_min_withdrawal"
    BAD_INTERNAL_ADDRESS = "bad_internal_address"
    WITHDRAWAL_MISSING = "withdrawal_missing"
    NOT_CANCELLABLE = "not_cancellable"
    ADDRESS_LIMIT = "address_limit"
    ADDRESS_MISSING = "address_missing"
