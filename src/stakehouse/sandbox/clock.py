"""The sandbox clock: business time kept in the database so that every process agrees.

Business time = ``base_time + (wall - base_wall)`` while running, ``base_time`` when frozen.
It only ever moves forward. Advancing it (CLI or admin API) goes through
:meth:`stakehouse.jobs.runner.JobRunner.advance_to`, which runs the jobs that fall due.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select, update

from stakehouse.clock import wall_time
from stakehouse.db.engine import Database
from stakehouse.db.tables import clock_state
from stakehouse.errors import InvalidParameter

#: The clock's one row, read by every ``now()`` (built once: see "Prebuilt statements" in docs/architecture.md).
_STATE = select(clock_state).where(clock_state.c.id == 1)


class SandboxClock:
    controllable = True

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure(self, start: dt.datetime | None = None, running: bool = True) -> None:
        with self.db.write() as conn:
            if conn.execute(select(clock_state.c.id)).first() is None:
                wall = wall_time()
                conn.execute(clock_state.insert().values(id=1, base_time=start or wall, base_wall=wall,
                                                         running=running))

    def wall(self) -> dt.datetime:
        return wall_time()

    def now(self) -> dt.datetime:
        with self.db.read() as conn:
            return self._now(conn)

    def _now(self, conn: Connection) -> dt.datetime:
        row = conn.execute(_STATE).one()
        if not row.running:
            return row.base_time  # type: ignore[no-any-return]
        return row.base_time + (wall_time() - row.base_wall)  # type: ignore[no-any-return]

    def set_to(self, moment: dt.datetime, *, running: bool | None = None) -> dt.datetime:
        """Move business time to ``moment`` (never backwards)."""
        with self.db.write() as conn:
            current = self._now(conn)
            if moment < current:
                raise InvalidParameter("to", "the sandbox clock only moves forward")
            values: dict[str, object] = {"base_time": moment, "base_wall": wall_time()}
            if running is not None:
                values["running"] = running
            conn.execute(update(clock_state).where(clock_state.c.id == 1).values(**values))
        return moment

    def freeze(self) -> dt.datetime:
        """Stop business time where it is (tests and demos that want exact timestamps)."""
        with self.db.write() as conn:
            current = self._now(conn)
            conn.execute(update(clock_state).where(clock_state.c.id == 1).values(
                base_time=current, base_wall=wall_time(), running=False))
        return current

    def resume(self) -> dt.datetime:
        """Let business time run with the wall clock again, from where it stands."""
        with self.db.write() as conn:
            current = self._now(conn)
            conn.execute(update(clock_state).where(clock_state.c.id == 1).values(
                base_time=current, base_wall=wall_time(), running=True))
        return current

    def is_running(self) -> bool:
        with self.db.read() as conn:
            return bool(conn.execute(select(clock_state.c.running)).scalar_one())
