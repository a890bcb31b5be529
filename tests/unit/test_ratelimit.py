from __future__ import annotations

import asyncio
import time

import pytest

from stakehouse.api.okx import ratelimit
from stakehouse.api.okx.ratelimit import Limit, RateLimiter


def test_moving_window_counts_accepted_requests_per_key() -> None:
    limiter = RateLimiter()
    limit = Limit(3, 1, "uid")

    async def run() -> tuple[list[bool], list[bool]]:
        first = [await limiter.hit(limit, "live", "u1") for _ in range(5)]
        other = [await limiter.hit(limit, "live", "u2") for _ in range(3)]
        return first, other

    first, other = asyncio.run(run())
    assert first == [True, True, True, False, False]
    assert other == [True, True, True]


def test_factor_scales_the_limit() -> None:
    limiter = RateLimiter(factor=2.0)
    results = asyncio.run(_hits(limiter, Limit(2, 1, "ip"), 5))
    assert results == [True, True, True, True, False]


async def _hits(limiter: RateLimiter, limit: Limit, n: int) -> list[bool]:
    return [await limiter.hit(limit, "k") for _ in range(n)]


def test_expired_entries_are_swept_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = RateLimiter()
    assert limiter.local is not None
    storage = limiter.local.storage
    asyncio.run(_hits(limiter, Limit(5, 1, "ip"), 3))
    assert storage.events  # type: ignore[attr-defined]
    monkeypatch.setattr(ratelimit, "SWEEP_SECONDS", 0.0)
    time.sleep(1.05)
    assert asyncio.run(_hits(limiter, Limit(5, 1, "ip"), 1)) == [True]
    # the sweep ran during that hit: only the new entry is left
    assert sum(len(v) for v in storage.events.values()) == 1  # type: ignore[attr-defined]
