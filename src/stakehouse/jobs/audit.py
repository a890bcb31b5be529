"""The chunked runs' invariants, checked by the audit (a run in progress is not a violation):

- a finished run has exactly the chunks it planned, every one done, and its totals are the exact
  sums of theirs, and its period is claimed in ``job_runs``;
- a run in progress has no more chunks than it planned; its ``job_runs`` row does not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from stakehouse.db.tables import job_run_chunks, job_run_plans, job_runs
from stakehouse.jobs.chunks import Totals, add_totals, totals_from_json


@dataclass
class Checked:
    """What the check found (the container makes it the audit's ``CheckResult``: jobs sit beside
    the ledger, not above it)."""

    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)


# The check's statements, built once ("Prebuilt statements" in docs/architecture.md).
_P, _C, _R = job_run_plans.c, job_run_chunks.c, job_runs.c
_CHUNKS = select(_C.job, _C.period, _C.done_at, _C.totals)
_CLAIMED = select(_R.job, _R.period).join(job_run_plans, (_P.job == _R.job) & (_P.period == _R.period))
_PLANS = select(_P.job, _P.period, _P.planned, _P.finished_at, _P.totals)


def chunked_runs(conn: Connection) -> Checked:
    result = Checked("chunked runs: chunks done, totals summed")
    chunks: dict[tuple[str, str], list[tuple[bool, Totals]]] = {}
    for row in conn.execute(_CHUNKS):
        chunks.setdefault((row.job, row.period), []).append((row.done_at is not None, totals_from_json(row.totals)))
    claimed = {(row.job, row.period) for row in conn.execute(_CLAIMED)}
    in_progress = 0
    for plan in conn.execute(_PLANS):
        result.checked += 1
        key = (plan.job, plan.period)
        mine = chunks.get(key, [])
        name = f"{plan.job} {plan.period}"
        if len(mine) > plan.planned:
            result.violations.append(f"{name}: {len(mine)} chunks, {plan.planned} planned")
        if plan.finished_at is None:
            in_progress += 1
            if key in claimed:
                result.violations.append(f"{name}: in progress but its period is marked done")
            continue
        summed: Totals = {}
        for _done, totals in mine:
            add_totals(summed, totals)
        recorded = totals_from_json(plan.totals)
        undone = sum(1 for done, _ in mine if not done)
        if len(mine) != plan.planned or undone:
            result.violations.append(f"{name}: finished with {len(mine)} of {plan.planned} chunks, {undone} not done")
        if {k: v for k, v in recorded.items() if v} != {k: v for k, v in summed.items() if v}:
            result.violations.append(f"{name}: totals {recorded} but its chunks sum to {summed}")
        if key not in claimed:
            result.violations.append(f"{name}: finished but its period is not marked done")
    if in_progress:
        result.name += f" ({in_progress} in progress)"
    return result
