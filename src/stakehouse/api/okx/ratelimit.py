"""Per-route rate limits (moving window) on the ``limits`` library.

In-memory by default; with a Redis URL every worker process shares the same counters. Windows
are measured in wall time: they throttle real request traffic, also in the sandbox.

The in-memory storage runs on the event loop. ``limits``' own memory storages expire old
entries from a ``threading.Timer`` restarted every 10 ms (sync) or a ``to_thread`` call per key
(asyncio); under load each costs a thread hand-off per request. :class:`LoopMemoryStorage` runs
the same expiry pass inline, at most once a second, which keeps the hot path free of threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

SWEEP_SECONDS = 1.0


@dataclass(frozen=True)
class Limit:
    """``count`` requests per ``seconds``, counted per the ``rule``'s key (as the route doc says):
    ``ip``, ``uid``, ``uid+ccy``, ``uid+instId`` or ``ip+instType``."""

    count: int
    seconds: int
    rule: str

    def item(self, factor: float) -> RateLimitItem:
        return RateLimitItemPerSecond(max(1, int(self.count * factor)), self.seconds)


class LoopMemoryStorage(MemoryStorage):
    """``limits``' MemoryStorage with its expiry pass run inline (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._last_sweep = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the base class's timer hook
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimiter:
    def __init__(self, redis_url: str = "", factor: float = 1.0) -> None:
        self.factor = factor
        self._items: dict[Limit, RateLimitItem] = {}
        self.shared: AsyncMovingWindow | None = None
        self.local: MovingWindowRateLimiter | None = None
        if redis_url:
            self.shared = AsyncMovingWindow(RedisStorage("async+" + redis_url, implementation="redispy"))
        else:
            self.local = MovingWindowRateLimiter(LoopMemoryStorage())

    async def hit(self, limit: Limit, *identifiers: str) -> bool:
        """Count one request; ``False`` (and nothing counted) when over the limit."""
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = limit.item(self.factor)
        key = "/".join(identifiers)  # one key part: the library escapes each part it gets
        if self.local is not None:
            return self.local.hit(item, "okx", key)
        assert self.shared is not None
        return await self.shared.hit(item, "okx", key)
