"""One message at a time per session.

With Redis the lock is cluster-wide (SET NX PX with a token, released by compare-and-delete),
so two pods cannot run a message on the same session at once. Without Redis, or while it is
down, the lock is per process. The TTL frees the lock of a pod that died mid-message.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from .redis import REDIS_ERRORS, RedisGate

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class LockToken:
    key: str
    value: str
    remote: bool


class SessionLocks:
    """Acquire returns a token, or None when a message is already running on the session."""

    def __init__(self, ttl_seconds: float, redis: RedisGate | None = None) -> None:
        self._ttl_ms = int(ttl_seconds * 1000)
        self._redis = redis
        self._local: set[str] = set()
        self._release = redis.client.register_script(_RELEASE) if redis else None

    async def acquire(self, session_id: uuid.UUID) -> LockToken | None:
        key = f"agent:lock:session:{session_id}"
        if self._redis is not None and self._redis.available:
            value = secrets.token_hex(8)
            try:
                ok = await self._redis.client.set(key, value, nx=True, px=self._ttl_ms)
            except REDIS_ERRORS as exc:
                self._redis.failed(exc)
            else:
                self._redis.succeeded()
                return LockToken(key, value, remote=True) if ok else None
        if key in self._local:
            return None
        self._local.add(key)
        return LockToken(key, "", remote=False)

    async def release(self, token: LockToken) -> None:
        if not token.remote:
            self._local.discard(token.key)
            return
        assert self._release is not None and self._redis is not None
        try:
            await self._release(keys=[token.key], args=[token.value])
        except REDIS_ERRORS as exc:
            # The TTL frees it; nothing else to do.
            self._redis.failed(exc)
