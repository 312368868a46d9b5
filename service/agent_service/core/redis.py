"""The shared Redis client and a small circuit breaker for the uses that can do without Redis."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError, RedisError

from .redis_pipe import PipelinedRedis

log = logging.getLogger(__name__)

# What a Redis call raises when the server is down, slow or unreachable.
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def describe(exc: BaseException) -> str:
    """`Type: message` for a log line or a probe (a bare TimeoutError() has no message)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def create_redis(url: str, timeout: float, max_connections: int) -> redis.Redis:
    """One pooled client per process; TLS and the auth token come from the URL (rediss://)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,  # wait for a free pooled connection at most this long
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # No PING before commands on a connection idle 15 s (a check on every command's hot
        # path): a connection that went stale fails its command, which is retried once on a
        # fresh one. redis-py's default retries back off for seconds; a request cannot wait.
        health_check_interval=0,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
    )
    # from_pool: closing the client closes its pool too.
    return redis.Redis.from_pool(pool)


class RedisGate:
    """Redis plus an 'is it worth trying' flag.

    After a failure, optional uses (cache, locks, rate limit) skip Redis for `cooldown` seconds
    and use their fallback, so an outage costs one timeout, not one per request. The next
    attempt after the cooldown finds out whether Redis is back: recovery needs no restart.
    """

    def __init__(
        self, client: redis.Redis, cooldown: float = 1.0, *, pipelined: bool = False
    ) -> None:
        self.client = client
        self._pipe = None
        if pipelined:
            timeout = client.connection_pool.connection_kwargs.get("socket_timeout") or 5.0
            self._pipe = PipelinedRedis(client, timeout)
        self._cooldown = cooldown
        self._down_until = 0.0
        self._down = False

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._cooldown
        if not self._down:
            self._down = True
            log.warning("redis unavailable; using fallbacks", extra={"error": describe(exc)})

    def succeeded(self) -> None:
        self._down_until = 0.0
        if self._down:
            self._down = False
            log.info("redis available again")

    async def close(self) -> None:
        if self._pipe is not None:
            await self._pipe.close()
        await self.client.aclose()

    async def call(self, *args: Any) -> Any:
        """One command whose reply is used raw (GET, EVALSHA): on the pipelined connection
        (core/redis_pipe.py; the API's chat path, `pipelined=True`), else on the client."""
        if self._pipe is not None:
            return await self._pipe.call(*args)
        return await self.client.execute_command(*args)

    def script(self, source: str) -> Script:
        return Script(self, source)


class Script:
    """A Lua script run by its SHA1 (EVALSHA through RedisGate.call), loaded on NOSCRIPT."""

    def __init__(self, gate: RedisGate, source: str) -> None:
        self._gate = gate
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis' script id

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._gate.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A restarted or failed-over server: EVAL runs it and caches it again.
            return await self._gate.call("EVAL", self._source, len(keys), *keys, *args)
