"""Per-API-key rate limit with the `limits` library: Redis storage when configured (shared by
all pods), memory otherwise, and memory as the fallback while Redis is down."""

from __future__ import annotations

import logging
import time

from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from .redis import REDIS_ERRORS, RedisGate

log = logging.getLogger(__name__)


class RateLimiter:
    """`hit(key)` returns None when allowed, else the seconds until a retry can succeed."""

    def __init__(self, rate: str, redis_url: str | None = None, redis: RedisGate | None = None):
        self.item = parse(rate)
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._redis = redis
        self._shared = None
        if redis is not None and redis_url is not None:
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                wrap_exceptions=False,
                connection_pool=redis.client.connection_pool,
                key_prefix="agent:ratelimit",
            )
            self._shared = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, key: str) -> float | None:
        limiter = self._memory
        if self._shared is not None and self._redis is not None and self._redis.available:
            try:
                if await self._shared.hit(self.item, key):
                    self._redis.succeeded()
                    return None
                limiter = self._shared
            except REDIS_ERRORS as exc:
                self._redis.failed(exc)
        if limiter is self._memory and await self._memory.hit(self.item, key):
            return None
        try:
            stats = await limiter.get_window_stats(self.item, key)
            return max(stats.reset_time - time.time(), 1.0)
        except REDIS_ERRORS:
            return float(self.item.get_expiry())
