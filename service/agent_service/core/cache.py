"""Response cache keyed by (backend, model, prompt): Redis with a TTL, or a bounded in-process map.

When Redis is configured but down the cache is bypassed (a miss costs a model call, not an error).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

import orjson

from .metrics import Metrics
from .redis import REDIS_ERRORS, RedisGate

_PREFIX = "agent:cache:"


def cache_key(backend: str, model: str, prompt: list[dict[str, str]]) -> str:
    """A stable key for one model call; the prompt is the whole conversation the model sees."""
    digest = hashlib.sha256(orjson.dumps([backend, model, prompt])).hexdigest()
    return _PREFIX + digest


class ResponseCache:
    """get/set with hit, miss and error counts (for /v1/stats and agent_cache_requests_total)."""

    def __init__(
        self,
        ttl: int,
        metrics: Metrics,
        redis: RedisGate | None = None,
        max_entries: int = 10_000,
    ) -> None:
        self.ttl = ttl
        self._redis = redis
        self._memory: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max_entries = max_entries
        self._counters = {
            result: metrics.cache.labels(result) for result in ("hit", "miss", "error")
        }
        self.hits = self.misses = self.errors = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def _count(self, result: str) -> None:
        self._counters[result].inc()
        if result == "hit":
            self.hits += 1
        elif result == "miss":
            self.misses += 1
        else:
            self.errors += 1

    async def get(self, key: str) -> str | None:
        """The cached reply, or None (also when Redis is unavailable)."""
        if self._redis is None:
            entry = self._memory.get(key)
            if entry is not None and entry[0] > time.monotonic():
                self._count("hit")
                return entry[1]
            self._count("miss")
            return None
        if not self._redis.available:
            self._count("error")
            return None
        try:
            value = await self._redis.call("GET", key)
        except REDIS_ERRORS as exc:
            self._redis.failed(exc)
            self._count("error")
            return None
        self._redis.succeeded()
        if value is None:
            self._count("miss")
            return None
        self._count("hit")
        return value.decode()

    async def set(self, key: str, value: str) -> None:
        """Store a reply for `ttl` seconds; failures are ignored (the cache is an optimisation)."""
        if self._redis is None:
            self._memory[key] = (time.monotonic() + self.ttl, value)
            self._memory.move_to_end(key)
            while len(self._memory) > self._max_entries:
                self._memory.popitem(last=False)
            return
        if not self._redis.available:
            return
        try:
            await self._redis.client.set(key, value, ex=self.ttl)
        except REDIS_ERRORS as exc:
            self._redis.failed(exc)

    @property
    def hit_rate(self) -> float:
        return self.hits / max(self.hits + self.misses, 1)
