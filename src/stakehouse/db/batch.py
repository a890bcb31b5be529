"""Request coalescing: concurrent lookups by key answered by one query per batch
(:class:`Batcher`), or by the one lookup already under way (:class:`SingleFlight`).

Under load many API requests want the same kind of row at once (the balances of their
users). Each waits for a database round trip; one statement for all of them costs the server
about as much as one for a single request. :class:`Batcher` collects the keys that callers ask
for while earlier batches are still running, then loads them together.

A caller only ever joins a batch whose query has **not started yet**, so what it reads was
committed no earlier than its own request arrived: a client that reads its balance right after
its own transfer sees the transfer, exactly as with one query per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """``await batcher.get(key)``: the value of ``key`` from the next batch ``load`` runs.

    ``load`` gets the distinct keys of a batch and returns a mapping; a key it leaves out gets
    ``missing()``. At most ``max_inflight`` loads run at a time; while all run, new keys gather
    in the next batch. A failing load fails every caller of its batch with the same exception.
    Bound to the event loop of its first use.
    """

    def __init__(self, load: Callable[[list[K]], Awaitable[Mapping[K, V]]], missing: Callable[[], V], *,
                 max_inflight: int = 4) -> None:
        self._load = load
        self._missing = missing
        self._max_inflight = max_inflight
        self._slots: asyncio.Semaphore | None = None
        self._open: dict[K, list[asyncio.Future[V]]] | None = None  # the batch new callers join
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to running batches

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None:
            batch = self._open = {}
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        waiter: asyncio.Future[V] = loop.create_future()
        batch.setdefault(key, []).append(waiter)
        # A caller that is cancelled (its client went away) cancels only its own future.
        return await waiter

    async def _run(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_inflight)
        async with self._slots:
            if self._open is batch:
                self._open = None  # closed: later callers need a later snapshot
            try:
                found = await self._load(list(batch))
            except BaseException as exc:
                for waiters in batch.values():
                    for waiter in waiters:
                        if not waiter.done():
                            if isinstance(exc, Exception):
                                waiter.set_exception(exc)
                            else:  # the loop is shutting down
                                waiter.cancel()
                if not isinstance(exc, Exception):
                    raise
                return
            for key, waiters in batch.items():
                value = found[key] if key in found else self._missing()
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(value)


class SingleFlight(Generic[K, V]):
    """``await flight.get(key)``: ``load(key)``, run once at a time per key; callers asking for a key
    while its load runs share that load's result (or exception). For lookups whose answer may be a
    little old anyway (API keys, cached for seconds): a cache miss under a burst of requests for one
    key costs one database lookup, not one per request. Bound to the event loop of its first use."""

    def __init__(self, load: Callable[[K], Awaitable[V]]) -> None:
        self._load = load
        self._running: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = asyncio.ensure_future(self._load_once(key))
        # shielded: a caller that is cancelled (its client went away) does not cancel the others' load
        return await asyncio.shield(running)

    async def _load_once(self, key: K) -> V:
        try:
            return await self._load(key)
        finally:
            self._running.pop(key, None)
