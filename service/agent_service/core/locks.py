"""One message at a time per session.

With Redis the lock is cluster-wide: SET NX PX with a random token (taken in the rate limiter's
round trip) for a short lease, renewed by a timer while the message runs, and released by
compare-and-delete (together with the reply's cache entry). A lock therefore outlives its work
by at most one lease (SESSION_LOCK_LEASE_SECONDS), whatever went wrong: a pod that died, a
release lost to a Redis outage, or an acquire the client gave up on (timeout) that Redis ran
after a stall. An acquire whose outcome is unknown is also released by its token when the
message ends.

The key includes the owner (the API key's id): another key's message takes its own lock and
then gets 404 from the ownership check, so it can neither tell a running session from an idle
one nor block it.

A lock can still vanish under a running message (evicted under memory pressure, or expired
during a Redis stall longer than the lease). Renewal takes a vanished lock back, and the reply
is stored only if the session's history is unchanged (a fence in PostgreSQL, see
ChatRepository.append_exchange), so a message that slipped in meanwhile cannot corrupt it.
Without Redis, or while it is down, the lock is per process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass

from .redis import REDIS_ERRORS, RedisGate

log = logging.getLogger(__name__)

# KEYS: the lock[, a cache entry]  ARGV: the lock's token[, cache value, cache TTL seconds]
_RELEASE = """
if #KEYS > 1 then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the lock  ARGV: the lock's token, lease ms
# -> 1 renewed, 2 taken back (it had vanished), 0 held by another message
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not held then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""


@dataclass(frozen=True)
class LockToken:
    """A session lock. `remote` False with a `value`: a process lock taken after the Redis
    acquire failed, which may still have set the Redis lock (released by token too)."""

    key: str
    value: str
    ttl_ms: int
    remote: bool


class SessionLocks:
    def __init__(
        self, lease_seconds: float, max_hold_seconds: float, redis: RedisGate | None = None
    ) -> None:
        self._ttl_ms = int(lease_seconds * 1000)
        self._max_hold = max_hold_seconds
        self._redis = redis
        self._local: set[str] = set()
        self._release = redis.script(_RELEASE) if redis else None
        self._renew = redis.script(_RENEW) if redis else None

    def token(self, owner: str, session_id: uuid.UUID) -> LockToken:
        """A token to take the session's lock with: remote when Redis is worth trying."""
        remote = self._redis is not None and self._redis.available
        value = os.urandom(8).hex() if remote else ""
        return LockToken(f"agent:lock:session:{owner}:{session_id}", value, self._ttl_ms, remote)

    def acquire_local(self, token: LockToken) -> LockToken | None:
        """Take the lock in this process (no Redis, or the Redis acquire failed: then the
        token's value is kept to release whatever it did); None when it is held."""
        if token.key in self._local:
            return None
        self._local.add(token.key)
        return LockToken(token.key, token.value, token.ttl_ms, remote=False)

    def lease(self, token: LockToken) -> Lease | None:
        """Start renewing a remote lock; stop it (Lease.stop) before releasing."""
        return Lease(self, token, self._max_hold) if token.remote else None

    async def renew(self, token: LockToken) -> int | None:
        """One renewal (see _RENEW); None when Redis is unavailable."""
        if self._renew is None or self._redis is None or not self._redis.available:
            return None
        try:
            result = await self._renew(keys=[token.key], args=[token.value, token.ttl_ms])
        except REDIS_ERRORS as exc:
            self._redis.failed(exc)
            return None
        self._redis.succeeded()
        return int(result)

    async def release(
        self, token: LockToken, cache_entry: tuple[str, str, int] | None = None
    ) -> bool:
        """Release the lock; with a remote lock also write `cache_entry` (key, value, TTL) in
        the same round trip. True when the cache entry was written."""
        if not token.remote:
            self._local.discard(token.key)
            if token.value and self._redis is not None and self._redis.available:
                await self._run_release([token.key], [token.value])
            return False
        keys, args = [token.key], [token.value]
        if cache_entry is not None:
            keys.append(cache_entry[0])
            args += [cache_entry[1], cache_entry[2]]
        return await self._run_release(keys, args) and cache_entry is not None

    async def _run_release(self, keys: list[str], args: list) -> bool:
        assert self._release is not None and self._redis is not None
        try:
            await self._release(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            # The lease frees the lock; the cache entry is only an optimisation.
            self._redis.failed(exc)
            return False
        self._redis.succeeded()
        return True


class Lease:
    """Renews a remote lock every third of its lease until stopped, for at most `max_hold`
    seconds. A timer, not a task, until the first renewal: most messages end before it."""

    def __init__(self, locks: SessionLocks, token: LockToken, max_hold: float) -> None:
        loop = asyncio.get_running_loop()
        self._locks = locks
        self._token = token
        self._every = token.ttl_ms / 3000
        self._until = loop.time() + max_hold
        self._task: asyncio.Task | None = None
        self._stopped = False
        self.lost = False
        self._handle: asyncio.TimerHandle | None = loop.call_later(self._every, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._task = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        result = await self._locks.renew(self._token)
        if result == 0:
            # Another message holds it now: this one's reply is refused by the fence.
            self.lost = True
            log.warning(
                "session lock taken over by another message", extra={"lock": self._token.key}
            )
            return
        if result == 2:
            log.warning("session lock had vanished; taken back", extra={"lock": self._token.key})
        loop = asyncio.get_running_loop()
        if not self._stopped and loop.time() + self._every < self._until:
            self._handle = loop.call_later(self._every, self._fire)

    async def stop(self) -> None:
        """No more renewals; waits for one in flight, so it cannot re-take a released lock."""
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
