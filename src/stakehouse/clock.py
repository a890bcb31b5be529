"""The one source of time.

Production uses :class:`SystemClock`. The sandbox uses :class:`SandboxClock`, whose state is a
row in the database so that every process (API workers, the job worker, the CLI) agrees on
it. Nothing else in Stakehouse reads the wall clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC


def wall_time() -> dt.datetime:
    """The host's wall clock. Only clocks call this."""
    return dt.datetime.now(UTC)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MS = dt.timedelta(milliseconds=1)
#: The last millisecond a ``datetime`` can hold (9999-12-31T23:59:59.999Z).
MAX_MS = (dt.datetime.max.replace(tzinfo=UTC) - EPOCH) // _MS


def to_ms(moment: dt.datetime) -> int:
    """Unix milliseconds, exactly (floor; no float on the way)."""
    return (moment - EPOCH) // _MS


def from_ms(ms: int) -> dt.datetime:
    """The moment of Unix millisecond ``ms``; ``ValueError`` outside 0..``MAX_MS``."""
    if not 0 <= ms <= MAX_MS:
        raise ValueError(f"Unix milliseconds must be between 0 and {MAX_MS}")
    return EPOCH + ms * _MS


class Clock(Protocol):
    #: True where the clock can be moved (sandbox).
    controllable: bool

    def now(self) -> dt.datetime:
        """Business time, timezone-aware UTC."""
        ...

    def wall(self) -> dt.datetime:
        """The host's wall clock (what clients sign requests with)."""
        ...


class SystemClock:
    controllable = False

    def now(self) -> dt.datetime:
        return wall_time()

    def wall(self) -> dt.datetime:
        return wall_time()


class FixedClock:
    """A clock for pure unit tests of time-dependent rules."""

    controllable = True

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment

    def wall(self) -> dt.datetime:
        return self.moment
