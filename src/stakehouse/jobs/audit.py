"""The chunked runs' invariants, checked by the audit (a run in progress is not a violation):

- a finished run has exactly the chunks it planned, every one done, and its totals are the exact
  sums of theirs, and its period is claimed in ``job_runs``;
- a run in progress has no more chunks than it planned; its ``job_runs`` row does not exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from stakehouse.db.tables import job_run_chunks, job_run_plans, job_runs
from stakehouse.jobs.chunks import Totals, add_totals, totals_from_json


@dataclass
class Checked:
    """What the check found (the container makes it the audit's ``CheckResult``: jobs sit beside
    the ledger, not above it)."""

    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)


# The check's statements, built once ("Prebuilt statements" in docs/architecture.md). The counts and
# claims are compared in SQL, which returns only the runs that break them; the totals are JSON, so Python
# sums them, except for a finished run of one chunk whose totals are the same text as its chunk's (both
# are ``totals_json``: sorted keys, canonical amounts), which are equal.
_P, _C, _R = job_run_plans.c, job_run_chunks.c, job_runs.c
_PER_PLAN = (select(_C.job, _C.period, func.count().label("n"), func.count(_C.done_at).label("done"),
                    func.min(_C.totals).label("one"))
             .group_by(_C.job, _C.period).subquery("per_plan"))
_N = func.coalesce(_PER_PLAN.c.n, 0)
_DONE = func.coalesce(_PER_PLAN.c.done, 0)
_CLAIMED = select(_R.job).where(_R.job == _P.job, _R.period == _P.period).exists()
_PLANS = job_run_plans.outerjoin(_PER_PLAN, (_PER_PLAN.c.job == _P.job) & (_PER_PLAN.c.period == _P.period))
_COUNTS = select(func.count().label("plans"), func.count().filter(_P.finished_at.is_(None)).label("open"))
#: Runs whose chunks or claim are not what their state says.
_COUNTS_OFF = (select(_P.job, _P.period, _P.planned, _P.finished_at, _N.label("n"), _DONE.label("done"),
                      _CLAIMED.label("claimed"))
               .select_from(_PLANS)
               .where((_N > _P.planned)
                      | (_P.finished_at.is_(None) & _CLAIMED)
                      | (_P.finished_at.is_not(None) & ((_N != _P.planned) | (_DONE != _N) | ~_CLAIMED)))
               .order_by(_P.job, _P.period))
#: Finished runs whose totals Python must sum (all but those of one chunk with the same totals text), and
#: their chunks' totals.
_TO_SUM = _P.finished_at.is_not(None) & ~((_N == 1) & (_PER_PLAN.c.one == _P.totals))
_TOTALS_TO_SUM = select(_P.job, _P.period, _P.totals).select_from(_PLANS).where(_TO_SUM).order_by(_P.job, _P.period)
_CHUNK_TOTALS = (select(_C.job, _C.period, _C.totals)
                 .select_from(job_run_chunks.join(_PLANS, (_P.job == _C.job) & (_P.period == _C.period)))
                 .where(_TO_SUM))


def _nonzero(totals: Totals) -> Totals:
    return {k: v for k, v in totals.items() if v}


def chunked_runs(conn: Connection) -> Checked:
    counts = conn.execute(_COUNTS).one()
    result = Checked("chunked runs: chunks done, totals summed", counts.plans)
    for plan in conn.execute(_COUNTS_OFF):
        name = f"{plan.job} {plan.period}"
        if plan.n > plan.planned:
            result.violations.append(f"{name}: {plan.n} chunks, {plan.planned} planned")
        if plan.finished_at is None:
            if plan.claimed:
                result.violations.append(f"{name}: in progress but its period is marked done")
            continue
        if plan.n != plan.planned or plan.done != plan.n:
            result.violations.append(f"{name}: finished with {plan.n} of {plan.planned} chunks, "
                                     f"{plan.n - plan.done} not done")
        if not plan.claimed:
            result.violations.append(f"{name}: finished but its period is not marked done")
    summed: dict[tuple[str, str], Totals] = {}
    for row in conn.execute(_CHUNK_TOTALS):
        add_totals(summed.setdefault((row.job, row.period), {}), totals_from_json(row.totals))
    for plan in conn.execute(_TOTALS_TO_SUM):
        recorded, chunks = totals_from_json(plan.totals), summed.get((plan.job, plan.period), {})
        if _nonzero(recorded) != _nonzero(chunks):
            result.violations.append(f"{plan.job} {plan.period}: totals {recorded} but its chunks sum to {chunks}")
    if counts.open:
        result.name += f" ({counts.open} in progress)"
    return result
