"""Per-route rate limits (sliding window) on the ``limits`` library.

In-memory by default; with a Redis URL every worker process shares the same counters.
Windows are measured in wall time: they throttle real request traffic, also in the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Limit:
    """``count`` requests per ``seconds``, counted per the ``rule``'s key (as the route doc says):
    ``ip``, ``uid``, ``uid+ccy``, ``uid+instId`` or ``ip+instType``."""

    count: int
    seconds: int
    rule: str

    def item(self, factor: float) -> RateLimitItem:
        return RateLimitItemPerSecond(max(1, int(self.count * factor)), self.seconds)


class RateLimiter:
    def __init__(self, redis_url: str = "", factor: float = 1.0) -> None:
        storage: Storage = RedisStorage(redis_url) if redis_url else MemoryStorage()
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.factor = factor

    def hit(self, limit: Limit, *identifiers: str) -> bool:
        """Count one request; ``False`` (and nothing counted) when over the limit."""
        return self.limiter.hit(limit.item(self.factor), "okx", *identifiers)
