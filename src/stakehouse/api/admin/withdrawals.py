"""Operator controls: withdrawals (seed 004). List them, and fail one that has not yet succeeded
on chain (the sandbox chain simulator's "the chain rejected it"); the funds return to the user.
The renderer is shared with the CLI (``stakehouse withdrawals``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stakehouse.operator.funding import parse_state, withdrawal_out
from stakehouse.wiring import Services


class FailIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why it failed; shown as the withdrawal's note")


def build_withdrawals_admin(r: APIRouter, services: Services) -> None:
    """Add the withdrawals routes to the admin router ``r``."""

    @r.get("/withdrawals")
    def list_withdrawals(uid: str = "", state: str = "", limit: int = 100) -> list[dict[str, Any]]:
        return [withdrawal_out(w) for w in services.withdrawals.list_all(uid=uid, state=parse_state(state),
                                                                         limit=limit)]

    @r.get("/withdrawals/{wd_id}")
    def get_withdrawal(wd_id: str) -> dict[str, Any]:
        return withdrawal_out(services.withdrawals.get(wd_id))

    @r.post("/withdrawals/{wd_id}/fail")
    def fail_withdrawal(wd_id: str, body: FailIn) -> dict[str, Any]:
        """Only until the withdrawal has succeeded (states 10, 0, 7, 1); the hold is refunded."""
        return withdrawal_out(services.withdrawals.fail(wd_id, body.reason))
