"""Jobs are periods run exactly once: in time order, across concurrent runners, after a crash."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, inspect, select

from stakehouse.config import Settings
from stakehouse.db.dialect import dialect_insert
from stakehouse.db.tables import meta
from stakehouse.jobs.runner import Job, JobRunner
from stakehouse.jobs.schedule import Daily, Hourly, Period
from stakehouse.security import new_server_key
from stakehouse.wiring import Services


def counter_job(name: str, log: list[str] | None = None, fail_on: str = "") -> Job:
    """A deliberately non-idempotent job: it adds one to a counter per run."""

    def run(conn: Connection, period: Period) -> str:
        if period.key == fail_on:
            raise RuntimeError("crash in the middle of the run")
        key = f"count:{name}:{period.key}"
        current = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()
        if current is None:
            conn.execute(dialect_insert(conn)(meta).values(key=key, value="1"))
        else:
            conn.execute(meta.update().where(meta.c.key == key).values(value=str(int(current) + 1)))
        if log is not None:
            log.append(period.key)
        return "counted"

    return Job(name, Daily("Europe/Istanbul"), run)


def counts(services: Services, name: str) -> dict[str, int]:
    prefix = f"count:{name}:"
    with services.db.read() as conn:
        rows = conn.execute(select(meta).where(meta.c.key.like(prefix + "%"))).all()
    return {r.key[len(prefix):]: int(r.value) for r in rows}


@pytest.fixture
def sandbox(backend: str, make_db: Callable[[str], str]) -> Iterator[Services]:
    db = make_db(backend)
    first = Services(Settings(database_url=db, sandbox=True, server_key=new_server_key(), key_expiry_enabled=False))
    assert first.sandbox_clock is not None
    first.sandbox_clock.freeze()
    yield first
    first.close()


def test_daily_periods_follow_the_business_time_zone() -> None:
    periods = list(Daily("Europe/Istanbul").ended_between(
        dt.datetime(2026, 3, 1, 20, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 3, 21, 0, tzinfo=dt.UTC)))
    assert [p.key for p in periods] == ["2026-03-01", "2026-03-02", "2026-03-03"]  # the end bound is inclusive
    assert periods[0].end == dt.datetime(2026, 3, 1, 21, 0, tzinfo=dt.UTC)  # 00:00 GMT+3
    hours = list(Hourly().ended_between(dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.UTC),
                                        dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)))
    assert [h.key for h in hours] == ["2026-03-01T00", "2026-03-01T01", "2026-03-01T02"]


def test_advance_runs_each_due_period_once_in_order(sandbox: Services) -> None:
    seen: list[str] = []
    sandbox.jobs.add(counter_job("daily", seen))
    start = sandbox.clock.now()
    ran = sandbox.advance_clock(by=dt.timedelta(days=3))
    assert [r.period for r in ran if r.job == "daily"] == seen and len(seen) == 3
    assert seen == sorted(seen)
    assert [r.due_at for r in ran] == sorted(r.due_at for r in ran)  # every job, in due order
    assert sandbox.clock.now() == start + dt.timedelta(days=3)
    assert sandbox.advance_clock(by=dt.timedelta(0)) == []
    assert set(counts(sandbox, "daily").values()) == {1}


def test_concurrent_runners_and_restarts_run_each_period_once(sandbox: Services) -> None:
    job = counter_job("shared")
    sandbox.jobs.add(job)
    assert sandbox.sandbox_clock is not None
    sandbox.sandbox_clock.set_to(sandbox.clock.now() + dt.timedelta(days=5))
    # several "workers" (runners over the same database) race for the same periods
    runners = [JobRunner(sandbox.db, sandbox.clock, sandbox.jobs) for _ in range(4)]
    threads = [threading.Thread(target=r.run_due) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = counts(sandbox, "shared")
    assert len(done) == 5 and set(done.values()) == {1}
    # a restarted worker finds nothing left to do
    assert JobRunner(sandbox.db, sandbox.clock, sandbox.jobs).run_due() == []


def test_a_crashed_period_leaves_nothing_and_runs_again(sandbox: Services) -> None:
    day2 = (sandbox.clock.now() + dt.timedelta(days=1)).astimezone(Daily("Europe/Istanbul").tz).date().isoformat()
    crashing = counter_job("flaky", fail_on=day2)
    sandbox.jobs.add(crashing)
    target = sandbox.clock.now() + dt.timedelta(days=3)
    with pytest.raises(RuntimeError):
        sandbox.advance_clock(to=target)
    assert day2 not in counts(sandbox, "flaky")
    assert sandbox.clock.now() < target  # the clock stops at the period that failed
    sandbox.jobs.jobs.remove(crashing)
    sandbox.jobs.add(counter_job("flaky"))  # the fixed code, after a restart
    sandbox.runner.run_due()
    sandbox.advance_clock(to=target)
    done = counts(sandbox, "flaky")
    assert done[day2] == 1 and set(done.values()) == {1} and len(done) == 3


def test_clock_never_moves_backwards(sandbox: Services) -> None:
    assert sandbox.sandbox_clock is not None
    with pytest.raises(Exception, match="only moves forward"):
        sandbox.sandbox_clock.set_to(sandbox.clock.now() - dt.timedelta(seconds=1))


def test_a_poll_reads_its_window_through_an_index(make_db: Callable[[str], str], backend: str) -> None:
    """``JobRunner.due`` selects runs by ``due_at`` range: the index keeps a poll flat as the history
    grows (``bench/job_poll.py``: 0.8 ms at 10 000 and at 1 000 000 rows; 32 ms without it)."""
    s = Services(Settings(database_url=make_db(backend), sandbox=True, server_key=new_server_key()))
    try:
        with s.db.read() as conn:
            indexes = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("job_runs")}
        assert indexes.get("ix_job_runs_due_at") == ["due_at"]
    finally:
        s.close()
