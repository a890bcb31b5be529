"""Moving the sandbox clock: every job period that falls due runs, in time order, once."""

from __future__ import annotations

import datetime as dt

from stakehouse.errors import InvalidParameter
from stakehouse.jobs.runner import JobRunner, RunRecord
from stakehouse.sandbox.clock import SandboxClock


def advance_to(clock: SandboxClock, runner: JobRunner, target: dt.datetime) -> list[RunRecord]:
    """Step the clock to each due moment up to ``target``, run what is due there, then stop at
    ``target``. Returns when every due job has run."""
    if target < clock.now():
        raise InvalidParameter("to", "the sandbox clock only moves forward")
    ran: list[RunRecord] = []
    for period, _, job in runner.due(target):
        if period.end > clock.now():
            clock.set_to(period.end)
        record = runner.run_one(job, period)
        if record:
            ran.append(record)
    if target > clock.now():
        clock.set_to(target)
    return ran
