"""The task queue's depth and oldest age per priority (core/backlog.py) against real Redis:
entries are added with ids at known times before Redis' own clock, so every age is known."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from agent_service.core.backlog import Backlog, measure
from agent_service.core.queue import GROUP, STREAMS

HIGH, NORMAL = STREAMS["high"], STREAMS["normal"]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _now_ms(client: redis.Redis) -> int:
    seconds, micros = await client.time()
    return seconds * 1000 + micros // 1000


async def _add(client: redis.Redis, stream: str, *ages_s: float) -> list[str]:
    """Entries whose ids were issued `ages_s` seconds ago (oldest first)."""
    now = await _now_ms(client)
    ids = []
    for i, age in enumerate(ages_s):
        ids.append(await client.xadd(stream, {"task_id": f"t{i}"}, id=f"{now - int(age * 1000)}-0"))
    return [i.decode() for i in ids]


def _about(backlog: Backlog, depth: int, age: float) -> bool:
    """The depth exactly; the age as of the entry's id, give or take the test's own time."""
    return backlog.depth == depth and age <= backlog.oldest_age_seconds < age + 1.0


async def test_an_empty_queue_is_zero_and_zero(client: redis.Redis) -> None:
    assert await measure(client) == {"high": Backlog(0, 0.0), "normal": Backlog(0, 0.0)}
    for stream in (HIGH, NORMAL):  # streams and group as the workers create them
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    assert await measure(client) == {"high": Backlog(0, 0.0), "normal": Backlog(0, 0.0)}


async def test_depth_is_waiting_plus_pending_and_age_the_oldest_of_them(
    client: redis.Redis,
) -> None:
    for stream in (HIGH, NORMAL):
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    ids = await _add(client, NORMAL, 50, 40, 30)
    await _add(client, HIGH, 20)
    # One normal entry delivered and not acknowledged, two waiting; the high one waiting.
    await client.xreadgroup(GROUP, "w1", {NORMAL: ">"}, count=1)
    backlog = await measure(client)
    assert _about(backlog["normal"], 3, 50), backlog
    assert _about(backlog["high"], 1, 20), backlog

    # Acknowledged: the oldest left is the first waiting entry (40 s).
    await client.xack(NORMAL, GROUP, ids[0])
    assert _about((await measure(client))["normal"], 2, 40)

    # The two delivered to a worker (pending), none waiting: still counted, still aging.
    await client.xreadgroup(GROUP, "w1", {NORMAL: ">"}, count=2)
    assert _about((await measure(client))["normal"], 2, 40)
    await client.xack(NORMAL, GROUP, *ids[1:])
    assert (await measure(client))["normal"] == Backlog(0, 0.0)


async def test_acknowledged_entries_still_in_the_stream_are_not_backlog(
    client: redis.Redis,
) -> None:
    await client.xgroup_create(NORMAL, GROUP, id="0", mkstream=True)
    ids = await _add(client, NORMAL, 90, 10)
    await client.xreadgroup(GROUP, "w1", {NORMAL: ">"}, count=1)
    await client.xack(NORMAL, GROUP, ids[0])  # done, but kept until the stream is trimmed
    assert await client.xlen(NORMAL) == 2
    assert _about((await measure(client))["normal"], 1, 10)


async def test_when_redis_cannot_tell_the_lag_the_waiting_entries_are_counted(
    client: redis.Redis,
) -> None:
    await client.xgroup_create(NORMAL, GROUP, id="0", mkstream=True)
    ids = await _add(client, NORMAL, 40, 30, 20, 10)
    await client.xdel(NORMAL, ids[2])  # a hole after the group's position: lag unknown
    assert (await client.xinfo_groups(NORMAL))[0]["lag"] is None
    assert _about((await measure(client))["normal"], 3, 40)
    # One delivered (pending, the oldest) and two still waiting behind the hole.
    await client.xreadgroup(GROUP, "w1", {NORMAL: ">"}, count=1)
    assert (await client.xinfo_groups(NORMAL))[0]["lag"] is None
    assert _about((await measure(client))["normal"], 3, 40)


async def test_a_stream_without_our_group_is_all_waiting(client: redis.Redis) -> None:
    # Redis lost the group; the API's XADD made a new stream: the workers will read it from 0.
    await _add(client, HIGH, 15, 5)
    assert _about((await measure(client))["high"], 2, 15)
