"""The chain simulator's pure deposit rules: confirmations as of a moment, the credit step, settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stakehouse.errors import InvalidParameter
from stakehouse.funding.deposit_rules import (
    CREDITED,
    FROZEN,
    SUCCESS,
    WAITING,
    ChainSettings,
    Step,
    confirmations_at,
    credit_step,
    due_at,
    validate_settings,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@given(seconds=st.integers(0, 10**6), block=st.integers(1, 600), unlock=st.integers(1, 100))
def test_confirmations_grow_one_per_block_up_to_unlock(seconds: int, block: int, unlock: int) -> None:
    now = T0 + dt.timedelta(seconds=seconds)
    shown = confirmations_at(state=WAITING, created_at=T0, block_seconds=block, unlock=unlock, now=now)
    assert shown == min(unlock, seconds // block)
    later = confirmations_at(state=WAITING, created_at=T0, block_seconds=block, unlock=unlock,
                             now=now + dt.timedelta(seconds=block))
    assert later >= shown


def test_confirmations_edge_cases() -> None:
    assert confirmations_at(state=SUCCESS, created_at=T0, block_seconds=10, unlock=6, now=T0) == 6
    assert confirmations_at(state=SUCCESS, created_at=T0, block_seconds=0, unlock=0, now=T0) == 0  # faucet
    assert confirmations_at(state=WAITING, created_at=T0, block_seconds=10, unlock=6,
                            now=T0 - dt.timedelta(seconds=5)) == 0
    assert confirmations_at(state=WAITING, created_at=T0, block_seconds=10, unlock=6,
                            now=T0 + dt.timedelta(seconds=9, microseconds=999_999)) == 0


def test_credit_step() -> None:
    due = due_at(T0, 3, 10)
    assert due == T0 + dt.timedelta(seconds=30)
    assert credit_step(created_at=T0, unlock=6, block_seconds=10, due=due, frozen=False) == \
        Step(CREDITED, T0 + dt.timedelta(seconds=60))
    assert credit_step(created_at=T0, unlock=3, block_seconds=10, due=due, frozen=False) == Step(SUCCESS, None)
    assert credit_step(created_at=T0, unlock=6, block_seconds=10, due=due, frozen=True) == Step(FROZEN, None)


GOOD = ChainSettings(confirmations=2, unlock_confirmations=4, fee=Decimal("0.1"), min_dep=Decimal("0.01"),
                     min_wd=Decimal(1), max_wd=Decimal(10), block_seconds=12, can_dep=True, can_wd=True)


@pytest.mark.parametrize(("change", "field"), [
    ({"confirmations": 0}, "confirmations"), ({"confirmations": 10_001, "unlock_confirmations": 10_001},
                                              "confirmations"),
    ({"unlock_confirmations": 1}, "unlockConfirmations"), ({"fee": Decimal(-1)}, "fee"),
    ({"fee": Decimal("0.0000001")}, "fee"), ({"min_dep": Decimal(0)}, "minDep"), ({"min_wd": Decimal(0)}, "minWd"),
    ({"max_wd": Decimal("0.5")}, "maxWd"), ({"block_seconds": 0}, "blockSeconds"),
    ({"block_seconds": 86_401}, "blockSeconds"),
])
def test_settings_validation_names_the_field(change: dict[str, object], field: str) -> None:
    validate_settings(GOOD, scale=6)
    with pytest.raises(InvalidParameter) as err:
        validate_settings(dataclasses.replace(GOOD, **change), scale=6)  # type: ignore[arg-type]
    assert err.value.field == field
