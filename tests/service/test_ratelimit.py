"""The per-key rate limit's arithmetic, in Redis and in process: how many calls fit when the
previous window still half overlaps, and the Retry-After seconds a refused client is told.

The clock is fixed (time.time patched), so every figure is exact: a 10/minute limit, windows of
60 s, and the previous window weighted by the share of it the sliding window still covers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest
from agent_service.core.errors import RateLimited
from agent_service.core.ratelimit import RateLimiter, retry_after
from agent_service.core.redis import RedisGate, create_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.stack import free_port

WINDOW = 60
START = WINDOW * 29_000_000  # the start of a window (in 2025), far from any real call


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set the wall clock to `START + seconds`."""

    def set_to(seconds: float) -> None:
        monkeypatch.setattr(time, "time", lambda: START + seconds)

    return set_to


@pytest.fixture(params=["redis", "memory"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield RateLimiter("10/minute")
        return
    url = request.getfixturevalue("redis_url")
    gate = RedisGate(create_redis(url, timeout=2.0, max_connections=2))
    yield RateLimiter("10/minute", gate)
    await gate.close()


async def allowed(limiter: RateLimiter, key: str, tries: int) -> tuple[int, RateLimited | None]:
    """How many of `tries` calls pass before the first refusal, and that refusal."""
    for n in range(tries):
        try:
            await limiter.check(key)
        except RateLimited as exc:
            return n, exc
    return tries, None


async def test_a_full_window_refuses_until_enough_of_it_slides_out(
    limiter: RateLimiter, clock: Callable[[float], None]
) -> None:
    clock(20)
    count, refused = await allowed(limiter, "k", 11)
    assert count == 10
    assert refused is not None
    # 40 s to the next window, then 6 s of it until the previous one weighs 9 calls.
    assert refused.retry_after == pytest.approx(46)
    assert refused.status == 429 and refused.code == "rate_limited"
    assert refused.message == "rate limit of 10/minute exceeded"


async def test_the_previous_window_counts_by_how_much_it_still_overlaps(
    limiter: RateLimiter, clock: Callable[[float], None]
) -> None:
    clock(20)
    assert (await allowed(limiter, "k", 10))[0] == 10
    clock(WINDOW + 30)  # halfway into the next window: the previous 10 weigh 5
    count, refused = await allowed(limiter, "k", 10)
    assert count == 5
    assert refused is not None
    # 5 + 5 = 10: one more fits once the previous window weighs 4, 6 s later.
    assert refused.retry_after == pytest.approx(6)
    clock(WINDOW + 45)  # a quarter left: the previous 10 weigh 2.5, 2.5 + 5 + 1 <= 10
    assert (await allowed(limiter, "k", 10))[0] == 2


async def test_a_window_two_windows_ago_no_longer_counts(
    limiter: RateLimiter, clock: Callable[[float], None]
) -> None:
    clock(20)
    assert (await allowed(limiter, "k", 10))[0] == 10
    clock(2 * WINDOW + 1)
    assert (await allowed(limiter, "k", 11))[0] == 10


async def test_keys_have_their_own_budgets(
    limiter: RateLimiter, clock: Callable[[float], None]
) -> None:
    clock(5)
    assert (await allowed(limiter, "a", 11))[0] == 10
    assert (await allowed(limiter, "b", 3))[0] == 3


async def test_the_redis_count_is_shared_by_limiters_and_its_windows_expire(
    redis_url: str, clock: Callable[[float], None]
) -> None:
    gate = RedisGate(create_redis(redis_url, timeout=2.0, max_connections=2))
    try:
        clock(10)
        pod_a, pod_b = RateLimiter("10/minute", gate), RateLimiter("10/minute", gate)
        assert (await allowed(pod_a, "k", 6))[0] == 6
        assert (await allowed(pod_b, "k", 6))[0] == 4
        # A window's counter lives two windows (it is the previous one for the next).
        keys = await gate.client.keys("agent:ratelimit:*")
        assert len(keys) == 1
        assert 119 <= await gate.client.ttl(keys[0]) <= 120
    finally:
        await gate.close()


def test_retry_after_seconds() -> None:
    # Over this window's own count: to the next window, then until enough slides out.
    assert retry_after(10, 60, 20, 0, 10) == pytest.approx(46)
    assert retry_after(10, 60, 50, 3, 20) == pytest.approx(10 + 60 * (1 - 9 / 20))
    # Weighted: until the previous window's share drops by what is missing.
    assert retry_after(10, 60, 10, 10, 4) == pytest.approx(20)
    # Nothing in the previous window: the end of this one.
    assert retry_after(10, 60, 15, 0, 3) == pytest.approx(45)
    # At least 1 s, at most one window.
    assert retry_after(10, 60, 59.5, 0, 3) == 1.0
    assert retry_after(10, 60, 0, 0, 10) == 60.0
    assert retry_after(10, 60, 50, 10, 5) == 1.0


async def test_with_redis_up_a_hit_without_a_lock_reports_no_lock(
    redis_url: str, clock: Callable[[float], None]
) -> None:
    gate = RedisGate(create_redis(redis_url, timeout=2.0, max_connections=2))
    try:
        clock(10)
        assert await RateLimiter("10/minute", gate).check("k") is None
    finally:
        await gate.close()


async def test_a_closed_gate_counts_in_memory_and_redis_down_is_logged(
    redis_url: str, clock: Callable[[float], None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_service.core.redis")
    clock(10)
    gate = RedisGate(create_redis(redis_url, timeout=2.0, max_connections=2), cooldown=30)
    try:
        limiter = RateLimiter("10/minute", gate)
        gate.failed(RedisConnectionError("refused"))
        assert (await allowed(limiter, "k", 11))[0] == 10  # counted in this process
        assert await gate.client.keys("agent:ratelimit:*") == []
    finally:
        await gate.close()
    down = RedisGate(
        create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, max_connections=2)
    )
    try:
        assert (await allowed(RateLimiter("10/minute", down), "k", 11))[0] == 10
        assert not down.available
    finally:
        await down.close()
    assert len(caplog.records) == 2
    assert caplog.records[0].error == "ConnectionError: refused"
    assert caplog.records[1].error.startswith("ConnectionError: ")
