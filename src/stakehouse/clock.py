"""The one source of time.

Production uses :class:`ProductionClock`: the host's wall clock, guarded against clock jumps.
The sandbox uses :class:`SandboxClock`, whose state is a row in the database so that every
process (API workers, the job worker, the CLI) agrees on it. Nothing else in Stakehouse reads the
wall clock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
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


class ProductionClock:
    """The host's wall clock, never earlier than the **stamp floor** nor than a moment it has
    already returned.

    Daily runs read the books as of a period's end behind the exclusive ledger barrier, and every
    write stamps itself after passing that barrier. A host whose clock is behind the job worker's
    (skew between machines) or was stepped back (NTP, a VM restored) would stamp a write *inside*
    a period already run: a reward, a settlement or a rebate computed without it, history changed
    behind the run's back. So the job runner records each such period's end as the floor (in the
    run's transaction), every write transaction reads it past the barrier
    (``Database.on_stamp_floor``), and this clock never answers earlier than it: the write is
    stamped at the period's end, in the next period, where the next run sees it. Within a process
    time never goes back either (a step back holds the clock where it was until the wall catches
    up). A clock that jumps *forward* cannot be told from time passing: the runs it makes due run,
    and the floor then holds every host at their end until the wall gets there."""

    controllable = False

    def __init__(self, wall: Callable[[], dt.datetime] = wall_time) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._floor = EPOCH
        self._last = EPOCH

    def now(self) -> dt.datetime:
        with self._lock:
            self._last = max(self._wall(), self._floor, self._last)
            return self._last

    def wall(self) -> dt.datetime:
        return self._wall()

    def raise_floor(self, moment: dt.datetime) -> None:
        """No moment before ``moment`` is returned from now on."""
        with self._lock:
            self._floor = max(self._floor, moment)


class FixedClock:
    """A clock for pure unit tests of time-dependent rules."""

    controllable = True

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment

    def wall(self) -> dt.datetime:
        return self.moment
