"""Per-API-key rate limit: a sliding-window counter, in Redis (shared by all pods) or in memory
(no Redis, or while it is down).

The count is this window's hits plus the previous window's, weighted by how much of it still
overlaps the sliding window (the algorithm of `limits`' SlidingWindowCounter). In Redis one
script checks and counts, and can also take the chat's session lock in the same round trip.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse

from .errors import RateLimited
from .locks import LockToken
from .redis import REDIS_ERRORS, RedisGate

_PREFIX = "agent:ratelimit:"

# KEYS: previous window's counter, this window's counter[, a session lock]
# ARGV: limit, window seconds, weight of the previous window[, lock token, lock TTL ms]
# -> {allowed, locked, previous count, current count}
_HIT = """
local prev = tonumber(redis.call('GET', KEYS[1]) or '0')
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if prev * tonumber(ARGV[3]) + cur + 1 > tonumber(ARGV[1]) then
  return {0, 0, prev, cur}
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 2 * tonumber(ARGV[2]))
if #KEYS < 3 then return {1, 0, prev, cur} end
if redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[5]) then return {1, 1, prev, cur} end
return {1, 0, prev, cur}
"""


@dataclass
class _Window:
    index: int
    previous: int = 0
    current: int = 0


def retry_after(limit: int, window: float, elapsed: float, previous: int, current: int) -> float:
    """Seconds until one more hit fits under `limit` (at least 1, at most one window: a hint
    for well-behaved clients, like the window reset time `limits` reported)."""
    if current + 1 > limit:
        # Wait for the next window, then for enough of this one to slide out.
        wait = window - elapsed + window * max(0.0, 1 - (limit - 1) / max(current, 1))
    elif previous > 0:
        wait = window - elapsed - window * (limit - 1 - current) / previous
    else:
        wait = window - elapsed
    return min(max(wait, 1.0), window)


class RateLimiter:
    """`check(key)` raises RateLimited (with Retry-After seconds) when `key` is over its rate."""

    def __init__(self, rate: str, redis: RedisGate | None = None) -> None:
        self.rate = rate
        self.item = parse(rate)
        self._redis = redis
        self._memory: dict[str, _Window] = {}
        self._script = redis.script(_HIT) if redis else None

    def _clock(self) -> tuple[int, float, float, float]:
        """(window index, seconds into it, previous window's weight, window length)."""
        window = float(self.item.get_expiry())
        now = time.time()
        index = math.floor(now / window)
        elapsed = now - index * window
        return index, elapsed, 1 - elapsed / window, window

    async def check(self, key: str, lock: LockToken | None = None) -> bool | None:
        """Count one hit for `key`; with `lock` (a remote one) also try to take it.

        Returns whether the lock was taken, or None when it was not tried in Redis (no lock
        given, or Redis unavailable: the caller then takes its local lock)."""
        index, elapsed, weight, window = self._clock()
        limit = self.item.amount
        if self._script is not None and self._redis is not None and self._redis.available:
            keys = [f"{_PREFIX}{key}:{index - 1}", f"{_PREFIX}{key}:{index}"]
            args: list = [limit, int(window), repr(weight)]
            if lock is not None:
                keys.append(lock.key)
                args += [lock.value, lock.ttl_ms]
            try:
                allowed, locked, previous, current = await self._script(keys=keys, args=args)
            except REDIS_ERRORS as exc:
                self._redis.failed(exc)
            else:
                self._redis.succeeded()
                if not allowed:
                    self._refuse(retry_after(limit, window, elapsed, previous, current))
                return bool(locked) if lock is not None else None
        self._check_memory(key, index, elapsed, weight, window, limit)
        return None

    def _check_memory(
        self, key: str, index: int, elapsed: float, weight: float, window: float, limit: int
    ) -> None:
        state = self._memory.get(key)
        if state is None or state.index < index - 1:
            state = self._memory[key] = _Window(index)
        elif state.index == index - 1:
            state.index, state.previous, state.current = index, state.current, 0
        if state.previous * weight + state.current + 1 > limit:
            self._refuse(retry_after(limit, window, elapsed, state.previous, state.current))
        state.current += 1

    def _refuse(self, seconds: float) -> None:
        raise RateLimited(f"rate limit of {self.rate} exceeded", retry_after=seconds)
