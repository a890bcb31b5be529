from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.ledger.rules import (
    AccountRef,
    Leg,
    Overdraft,
    UnbalancedEntry,
    apply_legs,
    check_balanced,
    reversal_legs,
)

A = AccountRef.user("1", 6, "USDT")
B = AccountRef.user("2", 6, "USDT")
CUSTODY = AccountRef.system("custody", "USDT")
amounts = st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal("1e20"), places=18)


def test_balanced_entry_passes_and_unbalanced_fails() -> None:
    check_balanced([Leg(A, Decimal("-1")), Leg(B, Decimal("1"))])
    with pytest.raises(UnbalancedEntry):
        check_balanced([Leg(A, Decimal("-1")), Leg(B, Decimal("0.99"))])
    with pytest.raises(UnbalancedEntry):
        check_balanced([Leg(A, Decimal("1"))])
    with pytest.raises(UnbalancedEntry):
        check_balanced([Leg(A, Decimal("0")), Leg(B, Decimal("0"))])


def test_balance_is_per_currency() -> None:
    eth = AccountRef.user("1", 6, "ETH")
    with pytest.raises(UnbalancedEntry):
        check_balanced([Leg(A, Decimal("-1")), Leg(eth, Decimal("1"))])


def test_user_overdraft_refused_system_may_go_negative() -> None:
    zero = (Decimal(0), Decimal(0))
    after = apply_legs({CUSTODY: zero, A: zero}, [Leg(CUSTODY, Decimal("-5")), Leg(A, Decimal("5"))])
    assert after[CUSTODY] == (Decimal("-5"), Decimal(0)) and after[A] == (Decimal("5"), Decimal(0))
    with pytest.raises(Overdraft):
        apply_legs({A: zero, B: zero}, [Leg(A, Decimal("-1")), Leg(B, Decimal("1"))])


def test_locking_moves_between_buckets() -> None:
    start = {A: (Decimal("3"), Decimal(0))}
    after = apply_legs(start, [Leg(A, Decimal("-2")), Leg(A, Decimal("2"), "locked")])
    assert after[A] == (Decimal("1"), Decimal("2"))


def test_unknown_accounts_are_refused() -> None:
    with pytest.raises(ValueError):
        AccountRef.user("1", 7, "USDT")
    with pytest.raises(ValueError):
        AccountRef.system("nobody", "USDT")


@given(st.lists(amounts, min_size=1, max_size=10))
def test_reversal_restores_balances(values: list[Decimal]) -> None:
    legs = [leg for v in values for leg in (Leg(CUSTODY, -v), Leg(A, v))]
    check_balanced(legs)
    zero = (Decimal(0), Decimal(0))
    after = apply_legs({CUSTODY: zero, A: zero}, legs)
    restored = apply_legs(after, reversal_legs(legs))
    assert restored == {CUSTODY: zero, A: zero}
