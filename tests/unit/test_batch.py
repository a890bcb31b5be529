"""Request coalescing (stakehouse.db.batch): one load per batch, never an older snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

import pytest

from stakehouse.db.batch import Batcher, SingleFlight


class Store:
    """A stand-in database: a dict whose loads are recorded and can be held open."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.loads: list[list[str]] = []
        self.running = 0
        self.most_running = 0
        self.gate: asyncio.Event | None = None
        self.fail_next: Exception | None = None

    async def load(self, keys: list[str]) -> Mapping[str, int]:
        self.loads.append(sorted(keys))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            snapshot = dict(self.rows)  # what the statement sees: taken when it starts
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            if self.fail_next is not None:
                exc, self.fail_next = self.fail_next, None
                raise exc
            return {k: snapshot[k] for k in keys if k in snapshot}
        finally:
            self.running -= 1


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a scenario; a wrong batcher may leave callers waiting forever, so it is bounded."""

    async def bounded() -> None:
        await asyncio.wait_for(main, timeout=5)

    asyncio.run(bounded())


def test_concurrent_gets_share_one_load_and_each_gets_its_own_value() -> None:
    async def main() -> None:
        store = Store()
        store.rows = {f"u{i}": i for i in range(10)}
        batcher = Batcher(store.load, lambda: -1)
        got = await asyncio.gather(*[batcher.get(f"u{i % 12}") for i in range(40)])
        assert got == [i % 12 if i % 12 < 10 else -1 for i in range(40)]
        assert store.loads == [sorted(f"u{i}" for i in range(12))]  # one load, distinct keys

    run(main())


def test_a_get_after_a_load_started_waits_for_a_later_snapshot() -> None:
    async def main() -> None:
        store = Store()
        store.rows = {"a": 1}
        store.gate = asyncio.Event()
        batcher = Batcher(store.load, lambda: 0, max_inflight=1)
        first = asyncio.ensure_future(batcher.get("a"))
        await asyncio.sleep(0.01)  # the first load is now running (held at the gate)
        assert store.loads == [["a"]]
        store.rows["a"] = 2  # a write that commits after that statement started ...
        second = asyncio.ensure_future(batcher.get("a"))  # ... and before this request arrived
        third = asyncio.ensure_future(batcher.get("a"))
        await asyncio.sleep(0.01)
        assert store.loads == [["a"]]  # no second load while the only slot is busy
        store.gate.set()
        assert await first == 1
        assert await second == 2 and await third == 2  # never the older snapshot
        assert store.loads == [["a"], ["a"]]  # the two late callers shared the second load

    run(main())


def test_at_most_max_inflight_loads_run_at_once() -> None:
    async def main() -> None:
        store = Store()
        store.rows = {f"k{i}": i for i in range(50)}
        store.gate = asyncio.Event()
        batcher = Batcher(store.load, lambda: 0, max_inflight=2)
        tasks = []
        for i in range(50):
            tasks.append(asyncio.ensure_future(batcher.get(f"k{i}")))
            await asyncio.sleep(0)  # spread the callers over many loop turns
        await asyncio.sleep(0.01)
        assert store.running == 2
        store.gate.set()
        assert await asyncio.gather(*tasks) == list(range(50))
        assert store.most_running == 2
        assert sum(len(keys) for keys in store.loads) == 50
        assert len(store.loads) < 50  # later callers were coalesced while the slots were busy

    run(main())


def test_a_failed_load_fails_its_callers_only() -> None:
    async def main() -> None:
        store = Store()
        store.rows = {"a": 1, "b": 2}
        store.fail_next = RuntimeError("connection lost")
        batcher = Batcher(store.load, lambda: 0)
        results = await asyncio.gather(batcher.get("a"), batcher.get("b"), return_exceptions=True)
        assert [type(r) for r in results] == [RuntimeError, RuntimeError]
        assert await batcher.get("b") == 2  # the next batch loads again

    run(main())


def test_a_cancelled_caller_does_not_cancel_others_waiting_for_the_same_key() -> None:
    async def main() -> None:
        store = Store()
        store.rows = {"a": 7}
        store.gate = asyncio.Event()
        batcher = Batcher(store.load, lambda: 0)
        leaving = asyncio.ensure_future(batcher.get("a"))
        staying = asyncio.ensure_future(batcher.get("a"))
        await asyncio.sleep(0.01)
        leaving.cancel()
        await asyncio.sleep(0)
        store.gate.set()
        assert await staying == 7
        with pytest.raises(asyncio.CancelledError):
            await leaving

    run(main())


# -- SingleFlight ------------------------------------------------------------------------------------


def test_single_flight_shares_one_load_per_key_at_a_time() -> None:
    async def scenario() -> None:
        loads: list[str] = []
        gate = asyncio.Event()

        async def load(key: str) -> str:
            loads.append(key)
            await gate.wait()
            return key.upper()

        flight: SingleFlight[str, str] = SingleFlight(load)
        waiting = [asyncio.ensure_future(flight.get(k)) for k in ("a", "a", "b", "a")]
        await asyncio.sleep(0)
        waiting[0].cancel()  # a caller that goes away does not stop the others' load
        gate.set()
        assert await asyncio.gather(*waiting[1:]) == ["A", "B", "A"]
        assert sorted(loads) == ["a", "b"]
        assert await flight.get("a") == "A" and sorted(loads) == ["a", "a", "b"]  # done loads are not kept

    asyncio.run(scenario())


def test_single_flight_shares_a_failure_and_then_tries_again() -> None:
    async def scenario() -> None:
        calls = 0

        async def load(key: str) -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0)
            if calls == 1:
                raise RuntimeError("down")
            return key

        flight: SingleFlight[str, str] = SingleFlight(load)
        results = await asyncio.gather(flight.get("k"), flight.get("k"), return_exceptions=True)
        assert [type(r) for r in results] == [RuntimeError, RuntimeError] and calls == 1
        assert await flight.get("k") == "k" and calls == 2

    asyncio.run(scenario())
