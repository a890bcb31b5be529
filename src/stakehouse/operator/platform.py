"""What the operator's tools show of the clock and of job runs.

No web framework here: the admin API and the CLI both render and parse with these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from stakehouse.clock import to_ms
from stakehouse.jobs.runner import RunProgress, RunRecord
from stakehouse.money import to_plain
from stakehouse.wiring import Services


def clock_out(services: Services) -> dict[str, Any]:
    """The clock as the admin API and the CLI show it."""
    now = services.clock.now()
    return {"now": now.isoformat(), "ts": str(to_ms(now)), "sandbox": services.settings.sandbox,
            "running": services.clock_running()}


#: Job runs listed in the reply to an advance (the newest; ``jobsRunCount`` counts them all).
ADVANCE_RUNS_SHOWN = 1000


def advance_out(now: Callable[[], dt.datetime], ran: list[RunRecord]) -> dict[str, Any]:
    """The reply to a clock advance (admin API and CLI)."""
    return {"now": now().isoformat(), "jobsRunCount": len(ran),
            "jobsRun": [{"job": j.job, "period": j.period, "dueAt": j.due_at.isoformat(), "result": j.result}
                        for j in ran[-ADVANCE_RUNS_SHOWN:]]}


def run_progress_out(run: RunProgress) -> dict[str, Any]:
    """A chunked run's record: chunks planned and done, its parameters and (so far) its totals."""
    return {"job": run.job, "period": run.period, "state": "finished" if run.finished else "running",
            "chunksPlanned": run.planned, "chunksDone": run.done, "startedAt": run.started_at.isoformat(),
            "finishedAt": run.finished_at.isoformat() if run.finished_at else None, "params": run.params,
            "totals": {k: to_plain(v) for k, v in sorted(run.totals.items())}}
