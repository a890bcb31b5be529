"""Periods of periodic jobs (pure: no I/O, no clock).

A job is not a timer: it is "process every period that has ended and is not yet processed".
A period is identified by a stable key, e.g. ``2026-11-21`` for a T-day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC


@dataclass(frozen=True, order=True)
class Period:
    end: dt.datetime  # the job is due at this moment (UTC)
    start: dt.datetime
    key: str


class Daily:
    """Days of a time zone. By default T-days: [00:00, 24:00) local, due at the next local midnight.
    With ``ends_at`` (e.g. 20:00 UTC for provider-staking accruals) day D is [D-1 ends_at, D ends_at):
    it ends, and is due, at ``ends_at`` on D itself."""

    def __init__(self, tz: str, ends_at: dt.time = dt.time()) -> None:
        self.tz = ZoneInfo(tz)
        self.ends_at = ends_at
        self._midnight = ends_at == dt.time()

    def day(self, moment: dt.datetime) -> dt.date:
        local = moment.astimezone(self.tz).date()
        # Compared as instants, not local clock times: a DST change may skip or repeat ``ends_at``.
        if self._midnight or moment < self.period_of_day(local).end:
            return local
        return local + dt.timedelta(days=1)

    def period_of_day(self, day: dt.date) -> Period:
        last = day + dt.timedelta(days=1) if self._midnight else day
        start = dt.datetime.combine(last - dt.timedelta(days=1), self.ends_at, self.tz).astimezone(UTC)
        end = dt.datetime.combine(last, self.ends_at, self.tz).astimezone(UTC)
        return Period(end=end, start=start, key=day.isoformat())

    def ended_between(self, after: dt.datetime, until: dt.datetime) -> Iterator[Period]:
        """Periods with ``after < end <= until``, oldest first."""
        day = self.day(after) - dt.timedelta(days=1)
        while True:
            period = self.period_of_day(day)
            if period.end > until:
                return
            if period.end > after:
                yield period
            day += dt.timedelta(days=1)


class Hourly:
    """UTC hours, due at the end of each hour."""

    def ended_between(self, after: dt.datetime, until: dt.datetime) -> Iterator[Period]:
        start = after.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while True:
            end = start + dt.timedelta(hours=1)
            if end > until:
                return
            if end > after:
                yield Period(end=end, start=start, key=start.strftime("%Y-%m-%dT%H"))
            start = end


Schedule = Daily | Hourly
