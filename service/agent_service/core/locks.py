"""One message at a time per session.

With Redis the lock is cluster-wide (SET NX PX with a token, taken in the rate limiter's round
trip; released by compare-and-delete, together with the reply's cache entry), so two pods
cannot run a message on the same session at once. Without Redis, or while it is down, the lock
is per process. The TTL frees the lock of a pod that died mid-message.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from .redis import REDIS_ERRORS, RedisGate

# KEYS: the lock[, a cache entry]  ARGV: the lock's token[, cache value, cache TTL seconds]
_RELEASE = """
if #KEYS > 1 then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class LockToken:
    key: str
    value: str
    ttl_ms: int
    remote: bool


class SessionLocks:
    def __init__(self, ttl_seconds: float, redis: RedisGate | None = None) -> None:
        self._ttl_ms = int(ttl_seconds * 1000)
        self._redis = redis
        self._local: set[str] = set()
        self._release = redis.client.register_script(_RELEASE) if redis else None

    def token(self, session_id: uuid.UUID) -> LockToken:
        """A token to take the session's lock with: remote when Redis is worth trying."""
        remote = self._redis is not None and self._redis.available
        value = os.urandom(8).hex() if remote else ""
        return LockToken(f"agent:lock:session:{session_id}", value, self._ttl_ms, remote)

    def acquire_local(self, token: LockToken) -> LockToken | None:
        """Take the lock in this process (no Redis); None when it is held."""
        if token.key in self._local:
            return None
        self._local.add(token.key)
        return LockToken(token.key, "", token.ttl_ms, remote=False)

    async def release(
        self, token: LockToken, cache_entry: tuple[str, str, int] | None = None
    ) -> bool:
        """Release the lock; with a remote lock also write `cache_entry` (key, value, TTL) in
        the same round trip. True when the cache entry was written."""
        if not token.remote:
            self._local.discard(token.key)
            return False
        assert self._release is not None and self._redis is not None
        keys, args = [token.key], [token.value]
        if cache_entry is not None:
            keys.append(cache_entry[0])
            args += [cache_entry[1], cache_entry[2]]
        try:
            await self._release(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            # The TTL frees the lock; the cache entry is only an optimisation.
            self._redis.failed(exc)
            return False
        self._redis.succeeded()
        return cache_entry is not None
