"""Gemini rate limits (spec section 7.6, open point 19) on the OKX adapter's moving-window limiter.

- Private calls: 600 per minute per API key; public calls: 120 per minute per client IP
  (both times ``settings.rate_limit_factor``, rounded down, at least 1).
- Above the rate, up to :data:`BURST` more requests per key wait (an ``asyncio`` sleep until the
  window frees a slot, first come first served) and are served late. A request that finds the
  queue full is refused at once (429 ``RateLimit``), and so is a queued one still without a slot
  when the whole queue should have passed (one window at Gemini's rates; other processes sharing
  the Redis counters may have taken the slots).

Counters are the OKX limiter's (our keys start with "gemini", so they never meet OKX's): in
memory per process, or in Redis shared by all workers (per process while Redis is unavailable).
The wait queue itself is per process.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from stakehouse.api.okx.ratelimit import Limit, RateLimiter

PRIVATE = Limit(600, 60, "key")
PUBLIC = Limit(120, 60, "ip")
#: Requests allowed to wait for a slot, per limit key.
BURST = 5
#: A queued request waits at most the windows the queue needs to pass (plus this) from its arrival.
SLACK_SECONDS = 1.0


@dataclass
class _Queue:
    waiting: int = 0
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class BurstLimiter:
    def __init__(self, limiter: RateLimiter, burst: int = BURST) -> None:
        self.limiter = limiter
        self.burst = burst
        self._queues: dict[str, _Queue] = {}

    async def _seconds_to_slot(self, limit: Limit, key: str) -> float:
        """Seconds until the oldest counted request leaves the window (wall time, as ``limits``)."""
        return max(0.0, await self.limiter.reset_time(limit, key) - time.time())

    def _patience(self, limit: Limit) -> float:
        """How long a queued request may wait: enough windows for the whole queue to pass at the
        limit's rate (one window at Gemini's real rates), plus a little."""
        amount = limit.item(self.limiter.factor).amount
        return limit.seconds * -(-self.burst // amount) + SLACK_SECONDS

    async def admit(self, limit: Limit, *identifiers: str) -> bool:
        """Count one request, waiting in the burst queue when over the rate; ``False``: refuse it."""
        key = "/".join(identifiers)
        queue = self._queues.get(key)
        if (queue is None or queue.waiting == 0) and await self.limiter.hit(limit, key):
            return True
        queue = self._queues.setdefault(key, _Queue())
        if queue.waiting >= self.burst:
            return False
        queue.waiting += 1
        try:
            async with asyncio.timeout(self._patience(limit)):
                async with queue.turn:  # asyncio locks are fair: the queue is served in arrival order
                    while not await self.limiter.hit(limit, key):
                        await asyncio.sleep(max(await self._seconds_to_slot(limit, key), 0.005))
                    return True
        except TimeoutError:
            return False
        finally:
            queue.waiting -= 1
            if queue.waiting == 0 and self._queues.get(key) is queue:
                del self._queues[key]
