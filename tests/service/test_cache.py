"""The response cache: how long a reply is kept (in Redis and in process), what the in-process map
evicts, and what happens when Redis is down (a miss, never an error, and one timeout per cooldown
instead of one per request)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from agent_service.core.cache import ResponseCache, cache_key
from agent_service.core.metrics import Metrics
from agent_service.core.redis import RedisGate, create_redis, describe
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.stack import free_port

from .scrape import value


@pytest.fixture
async def gate(redis_url: str) -> AsyncIterator[RedisGate]:
    gate = RedisGate(create_redis(redis_url, timeout=2.0, max_connections=4), cooldown=1.0)
    yield gate
    await gate.close()


@pytest.fixture
async def down_gate() -> AsyncIterator[RedisGate]:
    """A gate on a port nobody listens on, with a cooldown long enough for a test."""
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, max_connections=2)
    gate = RedisGate(client, cooldown=30.0)
    yield gate
    await gate.close()


def counts(metrics: Metrics) -> dict[str, float | None]:
    body = metrics.render().decode()
    results = ("hit", "miss", "error")
    return {r: value(body, "agent_cache_requests_total", result=r) for r in results}


async def test_a_reply_is_kept_in_redis_for_the_ttl(gate: RedisGate) -> None:
    metrics = Metrics()
    cache = ResponseCache(300, metrics, gate)
    key = cache_key("local", "echo", [{"role": "user", "content": "hi"}])
    assert await cache.get(key) is None
    await cache.set(key, "hello")
    assert await cache.get(key) == "hello"
    assert 299 <= await gate.client.ttl(key) <= 300
    assert (cache.hits, cache.misses, cache.errors) == (1, 1, 0)
    assert counts(metrics) == {"hit": 1.0, "miss": 1.0, "error": 0.0}
    assert cache.hit_rate == 0.5
    assert await cache.get(key) == "hello"
    assert await cache.get("agent:cache:other") is None
    assert await cache.get("agent:cache:other") is None
    assert (cache.hits, cache.misses, cache.errors) == (2, 3, 0)
    assert cache.hit_rate == 0.4


def test_keys_differ_by_backend_model_and_prompt() -> None:
    prompt = [{"role": "user", "content": "hi"}]
    key = cache_key("local", "echo", prompt)
    assert key.startswith("agent:cache:") and len(key) == len("agent:cache:") + 64
    assert key == cache_key("local", "echo", [{"role": "user", "content": "hi"}])
    assert len({key, cache_key("openai", "echo", prompt), cache_key("local", "other", prompt)}) == 3
    assert key != cache_key("local", "echo", [{"role": "user", "content": "hi!"}])


async def test_the_in_process_cache_expires_a_reply_after_the_ttl() -> None:
    cache = ResponseCache(1, Metrics())
    await cache.set("k", "v")
    assert await cache.get("k") == "v"
    await asyncio.sleep(1.05)
    assert await cache.get("k") is None
    assert (cache.hits, cache.misses) == (1, 1)


async def test_the_in_process_cache_evicts_the_least_recently_stored() -> None:
    cache = ResponseCache(60, Metrics(), max_entries=2)
    await cache.set("a", "1")
    await cache.set("b", "2")
    await cache.set("a", "1 again")  # stored again: now the most recent
    await cache.set("c", "3")
    assert await cache.get("b") is None
    assert await cache.get("a") == "1 again"
    assert await cache.get("c") == "3"
    await cache.set("d", "4")
    assert await cache.get("a") is None
    assert [await cache.get(k) for k in ("c", "d")] == ["3", "4"]


async def test_a_ttl_of_zero_turns_the_cache_off() -> None:
    assert ResponseCache(0, Metrics()).enabled is False
    assert ResponseCache(1, Metrics()).enabled is True


async def test_redis_down_is_a_miss_and_one_attempt_per_cooldown(
    down_gate: RedisGate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_service.core.redis")
    metrics = Metrics()
    cache = ResponseCache(300, metrics, down_gate)
    assert down_gate.available
    assert await cache.get("k") is None
    assert not down_gate.available  # the failure opened the gate for its cooldown
    began = time.monotonic()
    assert await cache.get("k") is None
    await cache.set("k", "v")
    assert time.monotonic() - began < 0.05  # no connection attempt while cooling down
    assert (cache.hits, cache.misses, cache.errors) == (0, 0, 2)
    assert counts(metrics) == {"hit": 0.0, "miss": 0.0, "error": 2.0}
    assert cache.hit_rate == 0.0
    [record] = caplog.records  # once per outage, with the real error
    assert record.error.startswith("ConnectionError: ")


async def test_a_failed_store_also_starts_the_cooldown(
    down_gate: RedisGate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_service.core.redis")
    cache = ResponseCache(300, Metrics(), down_gate)
    await cache.set("k", "v")
    assert not down_gate.available
    [record] = caplog.records
    assert record.error.startswith("ConnectionError: ")


async def test_the_gate_reopens_after_its_cooldown_and_on_success(redis_url: str) -> None:
    gate = RedisGate(create_redis(redis_url, timeout=1.0, max_connections=2), cooldown=0.3)
    try:
        cache = ResponseCache(300, Metrics(), gate)
        gate.failed(RedisConnectionError("refused"))
        assert not gate.available
        assert await cache.get("k") is None and cache.errors == 1
        await asyncio.sleep(0.35)
        assert gate.available
        await cache.set("k", "v")
        assert await cache.get("k") == "v"
        gate.failed(TimeoutError())
        gate.succeeded()
        assert gate.available
    finally:
        await gate.close()


def test_errors_are_described_with_their_type_and_message() -> None:
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(RedisConnectionError("refused")) == "ConnectionError: refused"


async def test_the_client_uses_the_configured_timeouts_and_pool_size(redis_url: str) -> None:
    client = create_redis(redis_url, timeout=0.75, max_connections=3)
    try:
        pool = client.connection_pool
        assert pool.max_connections == 3
        assert pool.timeout == 0.75
        assert pool.connection_kwargs["socket_timeout"] == 0.75
        assert pool.connection_kwargs["socket_connect_timeout"] == 0.75
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_the_in_process_cache_holds_10000_replies_by_default() -> None:
    cache = ResponseCache(60, Metrics())
    for n in range(10_001):
        await cache.set(f"k{n}", "v")
    assert await cache.get("k0") is None
    assert await cache.get("k1") == "v" and await cache.get("k10000") == "v"


async def test_the_default_cooldown_is_one_second(redis_url: str) -> None:
    gate = RedisGate(create_redis(redis_url, timeout=1.0, max_connections=2))
    try:
        gate.failed(TimeoutError())
        await asyncio.sleep(0.9)
        assert not gate.available
        await asyncio.sleep(0.2)
        assert gate.available
    finally:
        await gate.close()


async def test_a_connection_the_server_dropped_is_replaced_without_an_error(
    redis_url: str,
) -> None:
    """One retry on a fresh connection; and no PING before commands on an idle connection
    (health_check_interval 0: no extra round trip on the hot path)."""
    client = create_redis(redis_url, timeout=1.0, max_connections=1)
    admin = create_redis(redis_url, timeout=1.0, max_connections=1)
    try:
        await client.set("k", "v")
        await admin.client_kill_filter(_type="normal", skipme=True)
        assert await client.get("k") == b"v"
        pings = (await admin.info("commandstats")).get("cmdstat_ping", {}).get("calls", 0)
        await asyncio.sleep(1.1)
        assert await client.get("k") == b"v"
        after = (await admin.info("commandstats")).get("cmdstat_ping", {}).get("calls", 0)
        assert after == pings
    finally:
        await client.aclose()
        await admin.aclose()
