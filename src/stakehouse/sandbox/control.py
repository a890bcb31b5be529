"""Moving the sandbox clock: every job period and event-source item (chain deposits and
withdrawals) that falls due runs, in time order, once, with the clock set to its due time."""

from __future__ import annotations

import datetime as dt

from stakehouse.errors import InvalidParameter
from stakehouse.jobs.runner import JobRunner, RunRecord
from stakehouse.sandbox.clock import SandboxClock


def advance_to(clock: SandboxClock, runner: JobRunner, target: dt.datetime) -> list[RunRecord]:
    """Step the clock to each due moment up to ``target`` (job periods and event-source items,
    interleaved in due-time order by :meth:`JobRunner.run_until`), run what is due there, then stop
    at ``target``. Returns when everything due has run."""
    if target < clock.now():
        raise InvalidParameter("to", "the sandbox clock only moves forward")

    def step(due: dt.datetime) -> None:
        if due > clock.now():
            clock.set_to(due)

    ran = runner.run_until(target, step)
    if target > clock.now():
        clock.set_to(target)
    return ran
