"""The hot path's pipelined Redis connection: replies go to the right caller, the URL's DB and
AUTH are used, a stalled or lost connection fails with the client's errors and the next
command opens a new one, and scripts are loaded again after the server forgot them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from agent_service.core.redis import RedisGate, create_redis
from agent_service.core.redis_pipe import pack
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class FakeRedis:
    """A RESP server on loopback: records each connection's commands; `mode` says how it
    answers: "echo" (the last argument, after `delay` seconds), "stall" (never), "drop"
    (closes the connection)."""

    def __init__(self) -> None:
        self.connections: list[list[list[bytes]]] = []
        self.mode = "echo"
        self.delays: dict[bytes, float] = {}
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        commands: list[list[bytes]] = []
        self.connections.append(commands)
        try:
            while True:
                count = int((await reader.readline())[1:])
                args = []
                for _ in range(count):
                    size = int((await reader.readline())[1:])
                    args.append((await reader.readexactly(size + 2))[:-2])
                commands.append(args)
                if self.mode == "drop" or (self.mode == "drop-once" and len(self.connections) == 1):
                    writer.close()
                    return
                if self.mode == "stall":
                    continue
                await asyncio.sleep(self.delays.get(args[-1], 0))
                reply = b"+OK\r\n" if args[0] in (b"AUTH", b"SELECT") else args[-1]
                if not reply.startswith(b"+"):
                    reply = b"$%d\r\n%s\r\n" % (len(reply), reply)
                writer.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeRedis]:
    async with FakeRedis() as server:
        yield server


def gate(url: str, timeout: float = 2.0) -> RedisGate:
    return RedisGate(create_redis(url, timeout, 10), pipelined=True)


def test_commands_are_written_as_redis_py_writes_them() -> None:
    assert pack(("EVALSHA", "ab", 2, b"k", 0.5)) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$1\r\nk\r\n$3\r\n0.5\r\n"
    )


async def test_authenticates_and_selects_the_urls_database_first(fake: FakeRedis) -> None:
    redis_gate = gate(f"redis://user:secret@127.0.0.1:{fake.port}/3")
    try:
        assert await redis_gate.call("ECHO", "hi") == b"hi"
    finally:
        await redis_gate.close()
    assert fake.connections == [
        [[b"AUTH", b"user", b"secret"], [b"SELECT", b"3"], [b"ECHO", b"hi"]]
    ]


async def test_concurrent_callers_get_their_own_replies_on_one_connection(
    fake: FakeRedis,
) -> None:
    # The first reply is the slowest: a caller must not get the reply of the one before it.
    fake.delays = {b"0": 0.05}
    redis_gate = gate(f"redis://127.0.0.1:{fake.port}/0")
    try:
        replies = await asyncio.gather(*(redis_gate.call("ECHO", str(i)) for i in range(20)))
    finally:
        await redis_gate.close()
    assert replies == [str(i).encode() for i in range(20)]
    assert len(fake.connections) == 1


async def test_a_caller_that_gives_up_leaves_the_next_reply_to_the_next_caller(
    fake: FakeRedis,
) -> None:
    fake.delays = {b"slow": 0.2}
    redis_gate = gate(f"redis://127.0.0.1:{fake.port}/0")
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await redis_gate.call("ECHO", "slow")
        assert await redis_gate.call("ECHO", "next") == b"next"
    finally:
        await redis_gate.close()


async def test_a_stalled_connection_times_out_and_the_next_command_reconnects(
    fake: FakeRedis,
) -> None:
    fake.mode = "stall"
    redis_gate = gate(f"redis://127.0.0.1:{fake.port}/0", timeout=0.2)
    try:
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(
            redis_gate.call("ECHO", "a"), redis_gate.call("ECHO", "b"), return_exceptions=True
        )
        waited = asyncio.get_running_loop().time() - started
        assert [type(r) for r in results] == [RedisTimeoutError, RedisTimeoutError]
        assert 0.2 <= waited < 1.0
        fake.mode = "echo"
        assert await redis_gate.call("ECHO", "c") == b"c"
    finally:
        await redis_gate.close()
    assert len(fake.connections) == 2


async def test_a_command_on_a_connection_lost_under_it_is_retried_once_on_a_new_one(
    fake: FakeRedis,
) -> None:
    fake.mode = "drop-once"  # the first connection is closed when its first command arrives
    redis_gate = gate(f"redis://127.0.0.1:{fake.port}/0")
    try:
        assert await redis_gate.call("ECHO", "a") == b"a"
    finally:
        await redis_gate.close()
    assert fake.connections == [[[b"ECHO", b"a"]], [[b"ECHO", b"a"]]]


async def test_a_connection_lost_twice_is_a_connection_error_then_recovers(
    fake: FakeRedis,
) -> None:
    fake.mode = "drop"
    redis_gate = gate(f"redis://127.0.0.1:{fake.port}/0")
    try:
        with pytest.raises(RedisConnectionError):
            await redis_gate.call("ECHO", "a")
        fake.mode = "echo"
        assert await redis_gate.call("ECHO", "b") == b"b"
    finally:
        await redis_gate.close()
    assert len(fake.connections) == 3  # the command, its one retry, the next command


async def test_an_unreachable_server_is_a_connection_error() -> None:
    redis_gate = gate("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        with pytest.raises(RedisConnectionError):
            await redis_gate.call("PING")
    finally:
        await redis_gate.close()


async def test_scripts_and_errors_on_a_real_server(redis_url: str) -> None:
    redis_gate = gate(redis_url)
    client = redis.Redis.from_url(redis_url)
    script = redis_gate.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    try:
        assert await script(["n"], [2]) == 2
        await client.script_flush()  # a restarted server has forgotten it
        assert await script(["n"], [3]) == 5
        assert await client.get("n") == b"5"  # the URL's database
        with pytest.raises(ResponseError):
            await redis_gate.call("INCR", "no", "such", "arity")
    finally:
        await client.aclose()
        await redis_gate.close()
