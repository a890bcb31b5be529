"""Moving the sandbox clock: every job period and event-source item (chain deposits and
withdrawals) that falls due runs, in time order, once, with the clock set to its due time."""

from __future__ import annotations

import datetime as dt

from stakehouse.errors import InvalidParameter
from stakehouse.jobs.runner import JobRunner, ProgressFn, RunRecord
from stakehouse.sandbox.clock import SandboxClock

#: The longest single advance (about ten years): the work is done in time order, day by day, so an
#: advance costs time in proportion to its length; a longer span is several calls.
MAX_ADVANCE = dt.timedelta(days=10 * 366)


def advance_target(now: dt.datetime, *, to: dt.datetime | None, by: dt.timedelta | None) -> dt.datetime:
    """Where an advance asked as ``to`` (a moment) or ``by`` (a span) ends, from ``now``; each
    mistake has its own message. ``by`` of zero is allowed: it runs what is due now."""
    if to is not None and by is not None:
        raise InvalidParameter("to", "give either to, or days and seconds, not both")
    if to is None and by is None:
        raise InvalidParameter("days", "say how far to move the sandbox clock: days, seconds or to")
    if to is not None:
        if to.tzinfo is None:
            raise InvalidParameter("to", "needs a time zone, e.g. 2026-01-01T00:00:00Z")
        if to < now:
            raise InvalidParameter("to", f"{to.isoformat()} is before the sandbox clock ({now.isoformat()}): "
                                         f"the clock only moves forward")
        span, field = to - now, "to"
    else:
        assert by is not None
        if by < dt.timedelta(0):
            raise InvalidParameter("seconds", "must not be negative: the clock only moves forward")
        span, field = by, "days"
    if span > MAX_ADVANCE:
        raise InvalidParameter(field, f"at most {MAX_ADVANCE.days} days ahead of the sandbox clock "
                                      f"({now.isoformat()}) in one advance")
    return now + span


def advance_to(clock: SandboxClock, runner: JobRunner, target: dt.datetime, *,
               progress: ProgressFn | None = None) -> list[RunRecord]:
    """Step the clock to each due moment up to ``target`` (job periods and event-source items,
    interleaved in due-time order by :meth:`JobRunner.run_until`), run what is due there, then stop
    at ``target`` (or stay where the running clock already is, if that is later). Returns when
    everything due has run; ``progress`` hears of each day worked through."""

    def step(due: dt.datetime) -> None:
        if due > clock.now():
            clock.set_to(due)

    ran = runner.run_until(target, step, progress=progress)
    if target > clock.now():
        clock.set_to(target)
    return ran
