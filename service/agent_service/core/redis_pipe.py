"""One pipelined Redis connection for the chat hot path's commands (the rate limit and lock
script, the cache read, the release script, lease renewals).

redis-py spends ~125 us of CPU per command here (its pool's wait and bookkeeping, retry and
observability layers, a task per write), three commands a chat: ~25% of a chat's CPU, measured
with py-spy. Redis answers the commands of one connection in order, so every request of the
process can share one connection: its reply is the next one off the wire (an asyncio protocol
and the hiredis parser redis-py uses too), and the commands sent during one turn of the event
loop go out in one write: ~20 us of CPU a command instead of ~155 us, at 64 concurrent.

Where to connect (host, port, DB, AUTH, TLS and its checks) is read from the client's own
connection settings, so REDIS_URL means the same for both. Failures are the client's errors
(redis.exceptions), so callers keep their fallbacks: when the oldest command in flight has
not been answered within `timeout`, it and every command behind it (waiting on the same
stall) fail with TimeoutError and the connection closes; a lost connection fails its commands
in flight with ConnectionError, and each is retried once on a new connection, as the client
retried a command on a stale pooled connection (a timeout is not retried: the next command
opens a new connection).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
import redis.asyncio as redis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import (
    AuthenticationError,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def pack(args: tuple[Any, ...]) -> bytes:
    """A command in RESP: strings, bytes and numbers, as redis-py encodes them."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _error(reply: hiredis.ReplyError) -> ResponseError:
    message = str(reply)
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class _Protocol(asyncio.Protocol):
    """The connection: commands in flight in order, with the time each must be answered by.
    One timer watches the oldest (replies come in order): when it is late, the connection
    is stalled, and every command in flight fails with TimeoutError and the connection
    closes (cheaper than a timer per command)."""

    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader()
        self.pending: deque[tuple[asyncio.Future, float]] = deque()
        self.transport: Any = None
        self.lost = False
        self._timeout = timeout
        self._watchdog: asyncio.TimerHandle | None = None
        self._unsent: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future, _ = self.pending.popleft()
            if future.done():  # its caller gave up (cancelled): the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.closed.done():
            self.closed.set_result(None)
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._fail(RedisConnectionError("connection to redis lost"))

    def _fail(self, exc: Exception) -> None:
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(exc)

    def send(self, command: bytes) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        deadline = loop.time() + self._timeout
        self.pending.append((future, deadline))
        if not self._unsent:
            loop.call_soon(self._flush)
        self._unsent.append(command)
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._watch)
        return future

    def _flush(self) -> None:
        """Write what this turn of the event loop sent, at once: one system call for the
        commands of every request that ran in it (a write costs more than a command)."""
        unsent, self._unsent = self._unsent, []
        if not self.lost:
            self.transport.write(b"".join(unsent))

    def _watch(self) -> None:
        self._watchdog = None
        if not self.pending:
            return
        loop = asyncio.get_running_loop()
        oldest = self.pending[0][1]
        if oldest > loop.time():
            self._watchdog = loop.call_at(oldest, self._watch)
            return
        self._fail(RedisTimeoutError("timeout reading from redis"))
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # connection_lost fails what is pending


class PipelinedRedis:
    def __init__(self, client: redis.Redis, timeout: float) -> None:
        pool = client.connection_pool
        # A connection object of the client's own class and settings, never connected: where
        # and how to connect.
        settings = pool.connection_class(**pool.connection_kwargs)
        self._host, self._port = settings.host, settings.port
        self._ssl = settings.ssl_context.get() if isinstance(settings, SSLConnection) else None
        hello: list[tuple[Any, ...]] = []
        if settings.password:
            user = (settings.username,) if settings.username else ()
            hello.append(("AUTH", *user, settings.password))
        if settings.db:
            hello.append(("SELECT", settings.db))
        self._hello = hello
        self._timeout = timeout
        self._connect_timeout = settings.socket_connect_timeout or timeout
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def call(self, *args: Any) -> Any:
        """One command; its reply as redis-py's client returns it undecoded (bytes, ints,
        lists). Raises redis.exceptions errors."""
        command = pack(args)
        for attempt in (1, 2):
            protocol = await self._connected()
            try:
                return await protocol.send(command)
            except RedisConnectionError:
                # Lost with the command in flight (a server restart or failover under a
                # connection that looked open): once more on a new one, as the client retries.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        async with self._connecting:
            if self._protocol is None or self._protocol.lost:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self._timeout), self._host, self._port, ssl=self._ssl
                )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to redis: {exc!r}") from exc
        try:
            replies = [protocol.send(pack(command)) for command in self._hello]
            for reply in replies:
                await reply
        except ResponseError as exc:
            protocol.close()
            raise AuthenticationError(str(exc)) from exc
        except BaseException:
            protocol.close()
            raise
        return protocol

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()
            await protocol.closed  # the socket is closed once the loop has run its callback
