"""Per-route rate limits (moving window) on the ``limits`` library.

In-memory by default; with a Redis URL every worker process shares the same counters. Windows
are measured in wall time: they throttle real request traffic, also in the sandbox.

The in-memory storage runs on the event loop. ``limits``' own memory storages expire old
entries from a ``threading.Timer`` restarted every 10 ms (sync) or a ``to_thread`` call per key
(asyncio); under load each costs a thread hand-off per request. :class:`LoopMemoryStorage` runs
the same expiry pass inline, at most once a second, which keeps the hot path free of threads.

**A Redis outage degrades, it does not fail requests.** When the shared storage cannot answer
(refused, dropped or slow connection: ``REDIS_TIMEOUT_SECONDS``), the limiter counts in this
process's memory instead, logs ``rate_limit_redis_unavailable`` once, counts
``stakehouse_rate_limit_fallback_total`` and reports itself degraded (``/healthz``). It tries Redis
again ``REDIS_RETRY_SECONDS`` later and logs ``rate_limit_redis_recovered`` when it answers. While
degraded, every worker enforces each limit on its own, so a client spread over N workers may get
up to N times a limit: the choice is to keep serving (docs/configuration.md).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Counter
from redis.asyncio import ConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

log = structlog.get_logger(__name__)
T = TypeVar("T")

SWEEP_SECONDS = 1.0
#: How long a Redis command may take before the limiter counts locally instead.
REDIS_TIMEOUT_SECONDS = 0.5
#: After a failure, Redis is asked again only this much later (meanwhile: local counting).
REDIS_RETRY_SECONDS = 5.0

FALLBACKS = Counter("stakehouse_rate_limit_fallback_total",
                    "Rate-limit decisions made in process memory because Redis could not answer")


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
        self.local = MovingWindowRateLimiter(LoopMemoryStorage())
        self.shared: AsyncMovingWindow | None = None
        #: The Redis connections (made here, so that :meth:`prefill` can open them ahead of use).
        self._pool: ConnectionPool | None = None
        #: monotonic time until which Redis is not asked (0: healthy)
        self._skip_shared_until = 0.0
        if redis_url:
            no_retry = Retry(NoBackoff(), 0)
            self._pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                                 socket_timeout=REDIS_TIMEOUT_SECONDS, retry=no_retry)
            storage = RedisStorage("async+" + redis_url, implementation="redispy", wrap_exceptions=True,
                                   connection_pool=self._pool, retry=no_retry)  # type: ignore[arg-type]
            self.shared = AsyncMovingWindow(storage)

    async def prefill(self, count: int) -> int:
        """Open ``count`` Redis connections now, all at once, and put them in the pool, which keeps
        them (it never closes idle ones). Returns how many were opened: 0 without Redis, or when
        it does not answer (the limiter then counts in memory, as it would on the first request)."""
        if self._pool is None or count == 0:
            return 0
        held = []
        try:
            for _ in range(count):
                held.append(await self._pool.get_connection())  # type: ignore[no-untyped-call]
        except RedisError as exc:
            self._shared_failed(exc)
        finally:
            for conn in held:
                await self._pool.release(conn)
        return len(held) if not self.degraded else 0

    @property
    def degraded(self) -> bool:
        """Whether limits are being counted per process because Redis did not answer."""
        return self._skip_shared_until > 0.0

    def _item(self, limit: Limit) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = limit.item(self.factor)
        return item

    def _use_shared(self) -> AsyncMovingWindow | None:
        if self.shared is None:
            return None
        if self._skip_shared_until and time.monotonic() < self._skip_shared_until:
            FALLBACKS.inc()
            return None
        return self.shared

    def _shared_failed(self, exc: BaseException) -> None:
        if not self.degraded:
            log.warning("rate_limit_redis_unavailable", error=type(exc).__name__,
                        fallback="per-process memory", retry_seconds=REDIS_RETRY_SECONDS)
        self._skip_shared_until = time.monotonic() + REDIS_RETRY_SECONDS
        FALLBACKS.inc()

    def _shared_answered(self) -> None:
        if self._skip_shared_until:
            self._skip_shared_until = 0.0
            log.warning("rate_limit_redis_recovered")

    async def _ask(self, shared_call: Callable[[AsyncMovingWindow], Awaitable[T]],
                   local_call: Callable[[MovingWindowRateLimiter], T]) -> T:
        """Redis's answer, or this process's memory's when Redis is not configured or cannot answer."""
        shared = self._use_shared()
        if shared is not None:
            try:
                answer = await shared_call(shared)
            except StorageError as exc:
                self._shared_failed(exc)
            else:
                self._shared_answered()
                return answer
        return local_call(self.local)

    async def hit(self, limit: Limit, *identifiers: str) -> bool:
        """Count one request; ``False`` (and nothing counted) when over the limit."""
        item = self._item(limit)
        key = "/".join(identifiers)  # one key part: the library escapes each part it gets
        if self.shared is None:  # the hot path without Redis: no closures
            return self.local.hit(item, "okx", key)
        return await self._ask(lambda shared: shared.hit(item, "okx", key), lambda local: local.hit(item, "okx", key))

    async def test(self, limit: Limit, *identifiers: str) -> bool:
        """Whether one more :meth:`hit` would be allowed (nothing is counted)."""
        item, key = self._item(limit), "/".join(identifiers)
        return await self._ask(lambda shared: shared.test(item, "okx", key),
                               lambda local: local.test(item, "okx", key))

    async def reset_time(self, limit: Limit, *identifiers: str) -> float:
        """When (Unix seconds, wall time) the oldest request counted under the key leaves its window."""
        item, key = self._item(limit), "/".join(identifiers)

        async def shared_reset(shared: AsyncMovingWindow) -> float:
            return float((await shared.get_window_stats(item, "okx", key)).reset_time)

        return await self._ask(shared_reset, lambda local: float(local.get_window_stats(item, "okx", key).reset_time))

    async def check(self) -> str:
        """The storage's state for ``/healthz``: ``memory`` (no Redis configured), ``redis`` (it
        answered a ping now), or ``memory (redis unavailable)``."""
        if self.shared is None:
            return "memory"
        try:
            ok = await self.shared.storage.check()
        except Exception as exc:  # check() may raise as well as answer False
            self._shared_failed(exc)
            return "memory (redis unavailable)"
        if not ok:
            self._shared_failed(ConnectionError("ping failed"))
            return "memory (redis unavailable)"
        self._shared_answered()
        return "redis"
