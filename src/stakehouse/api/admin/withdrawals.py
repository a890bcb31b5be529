"""Operator controls: withdrawals (seed 004). List them, and fail one that has not yet succeeded
on chain (the sandbox chain simulator's "the chain rejected it"); the funds return to the user.
The renderer is shared with the CLI (``stakehouse withdrawals``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stakehouse import errors as dom
from stakehouse.api.admin.chain import iso_or_none
from stakehouse.chain.withdrawal_rules import STATE_FILTER
from stakehouse.chain.withdrawals import Withdrawal
from stakehouse.clock import to_ms
from stakehouse.money import fmt
from stakehouse.services import Services


class FailIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why it failed; shown as the withdrawal's note")


def withdrawal_out(w: Withdrawal) -> dict[str, Any]:
    return {"wdId": w.wd_id, "uid": w.uid, "subAcct": w.sub_name, "clientId": w.client_id, "ccy": w.ccy,
            "chain": w.chain, "amt": fmt(w.amt), "fee": fmt(w.fee), "feeCcy": w.fee_ccy, "dest": str(w.dest),
            "toAddr": w.to_addr, "tag": w.tag, "toUid": w.to_uid, "state": str(w.state), "txId": w.tx_id,
            "confirmations": w.confirmations, "requiredConfirmations": w.required_confirmations,
            "note": w.note, "ts": str(to_ms(w.created_at)), "createdAt": w.created_at.isoformat(),
            "nextAt": iso_or_none(w.next_at), "broadcastAt": iso_or_none(w.broadcast_at),
            "completedAt": iso_or_none(w.completed_at)}


def parse_state(text: str) -> int | None:
    """A withdrawal state filter (``""``: any)."""
    if not text:
        return None
    try:
        state = int(text)
    except ValueError:
        state = None
    if state not in STATE_FILTER:
        raise dom.InvalidParameter("state", f"one of {', '.join(str(s) for s in STATE_FILTER)}")
    return state


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
