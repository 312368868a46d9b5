"""The Redis Streams task queue against the real Redis: where entries go, the group's start at id
0 when Redis lost it, high priority first, reclaiming what a dead consumer held, heartbeats,
acknowledgements and give-backs, and the read position the reconciler relies on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from agent_service.core.queue import GROUP, STREAMS, Position, RedisTaskQueue, is_nogroup
from agent_service.core.redis import create_redis
from redis.exceptions import ResponseError


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = create_redis(redis_url, timeout=2.0, max_connections=4)
    yield client
    await client.aclose()


@pytest.fixture
async def queue(client: redis.Redis) -> RedisTaskQueue:
    queue = RedisTaskQueue(client)
    await queue.ensure_group()
    return queue


async def _pending(client: redis.Redis, priority: str) -> int:
    return (await client.xpending(STREAMS[priority], GROUP))["pending"]


async def test_entries_go_to_their_prioritys_stream(client: redis.Redis) -> None:
    queue = RedisTaskQueue(client)
    ids = [uuid.uuid4() for _ in range(3)]
    await queue.enqueue(ids[0], "high")
    await queue.enqueue_many([(ids[1], "normal"), (ids[2], "high")])
    high = await client.xrange("agent:tasks:high")
    normal = await client.xrange("agent:tasks:normal")
    assert [fields for _, fields in high] == [
        {b"task_id": str(ids[0]).encode()},
        {b"task_id": str(ids[2]).encode()},
    ]
    assert [fields for _, fields in normal] == [{b"task_id": str(ids[1]).encode()}]


async def test_a_lost_group_is_recreated_at_id_0_and_delivers_what_was_added_since(
    client: redis.Redis,
) -> None:
    queue = RedisTaskQueue(client)
    task = uuid.uuid4()
    await queue.enqueue(task, "normal")  # the API's XADD recreated the stream, not the group
    with pytest.raises(ResponseError) as missing:
        await queue.read("w1", 10, 10)
    assert is_nogroup(missing.value)
    assert not is_nogroup(ResponseError("BUSYGROUP Consumer Group name already exists"))
    assert not is_nogroup(ValueError("NOGROUP"))
    await queue.ensure_group()
    await queue.ensure_group()  # a no-op where the group exists
    assert await client.exists(*STREAMS.values()) == 2
    [entry] = await queue.read("w1", 10, 10)
    assert (entry.task_id, entry.priority, entry.stream) == (task, "normal", STREAMS["normal"])


async def test_high_priority_is_read_first_and_count_is_respected(queue: RedisTaskQueue) -> None:
    normal = [uuid.uuid4() for _ in range(2)]
    high = [uuid.uuid4() for _ in range(3)]
    for task in normal:
        await queue.enqueue(task, "normal")
    for task in high:
        await queue.enqueue(task, "high")
    first = await queue.read("w1", 2, 10)
    assert [e.task_id for e in first] == high[:2]
    assert {e.priority for e in first} == {"high"}
    second = await queue.read("w1", 2, 10)  # one high left: then the normal ones too
    assert (second[0].task_id, second[0].priority) == (high[2], "high")
    rest = [e.task_id for e in second[1:]] + [e.task_id for e in await queue.read("w1", 5, 10)]
    assert rest == normal
    began = asyncio.get_running_loop().time()
    assert await queue.read("w1", 5, 200) == []
    assert asyncio.get_running_loop().time() - began >= 0.15  # it blocked for block_ms


async def test_ack_and_give_back(queue: RedisTaskQueue, client: redis.Redis) -> None:
    tasks = [uuid.uuid4(), uuid.uuid4()]
    await queue.enqueue(tasks[0], "high")
    await queue.enqueue(tasks[1], "high")
    done, back = await queue.read("w1", 2, 10)
    await queue.ack(done)
    assert await _pending(client, "high") == 1
    await queue.give_back(back)
    assert await _pending(client, "high") == 0
    [again] = await queue.read("w2", 10, 10)
    assert again.task_id == back.task_id and again.entry_id != back.entry_id
    assert again.stream == STREAMS["high"] and again.priority == "high"


async def test_a_dead_consumers_entries_are_reclaimed_after_the_idle_time(
    queue: RedisTaskQueue, client: redis.Redis
) -> None:
    tasks = [uuid.uuid4() for _ in range(3)]
    await queue.enqueue(tasks[0], "high")
    await queue.enqueue(tasks[1], "normal")
    await queue.enqueue(tasks[2], "normal")
    held = await queue.read("dead", 10, 10) + await queue.read("dead", 10, 10)
    assert len(held) == 3
    assert await queue.reclaim("alive", 60_000, 10) == []  # not idle long enough
    await asyncio.sleep(0.15)
    first = await queue.reclaim("alive", 100, 2)
    assert [e.task_id for e in first] == tasks[:2]
    assert [e.priority for e in first] == ["high", "normal"]
    rest = await queue.reclaim("alive", 100, 10)
    assert [e.task_id for e in rest] == tasks[2:]
    owners = await client.xpending_range(STREAMS["normal"], GROUP, "-", "+", 10)
    assert {o["consumer"] for o in owners} == {b"alive"}


async def test_reclaim_stops_at_count_with_high_priority_first(queue: RedisTaskQueue) -> None:
    high = [uuid.uuid4(), uuid.uuid4()]
    for task in high:
        await queue.enqueue(task, "high")
    await queue.enqueue(uuid.uuid4(), "normal")
    assert len(await queue.read("dead", 10, 10) + await queue.read("dead", 10, 10)) == 3
    await asyncio.sleep(0.05)
    assert [e.task_id for e in await queue.reclaim("alive", 10, 2)] == high
    assert [e.priority for e in await queue.reclaim("alive", 10, 2)] == ["normal"]


async def test_a_heartbeat_keeps_entries_from_being_reclaimed(
    queue: RedisTaskQueue, client: redis.Redis
) -> None:
    await queue.enqueue(uuid.uuid4(), "normal")
    await queue.enqueue(uuid.uuid4(), "high")
    held = await queue.read("busy", 10, 10) + await queue.read("busy", 10, 10)
    assert len(held) == 2
    await asyncio.sleep(0.3)
    await queue.heartbeat("busy", held)
    assert await queue.reclaim("other", 200, 10) == []
    # A heartbeat is not a delivery: the entries' delivery counts stay 1.
    for entry in held:
        [info] = await client.xpending_range(entry.stream, GROUP, "-", "+", 1)
        assert (info["consumer"], info["times_delivered"]) == (b"busy", 1)
    await asyncio.sleep(0.25)
    assert len(await queue.reclaim("other", 200, 10)) == 2


async def test_an_entry_deleted_while_pending_is_skipped(
    queue: RedisTaskQueue, client: redis.Redis
) -> None:
    await queue.enqueue(uuid.uuid4(), "normal")
    kept = uuid.uuid4()
    await queue.enqueue(kept, "normal")
    gone, _ = await queue.read("dead", 10, 10)
    await client.xdel(STREAMS["normal"], gone.entry_id)
    await asyncio.sleep(0.05)
    assert [e.task_id for e in await queue.reclaim("alive", 10, 10)] == [kept]


async def test_positions_say_how_far_the_group_read(
    client: redis.Redis, queue: RedisTaskQueue
) -> None:
    assert await RedisTaskQueue(client).positions() == {
        "high": Position(datetime.fromtimestamp(0, UTC), 0),
        "normal": Position(datetime.fromtimestamp(0, UTC), 0),
    }
    for _ in range(3):
        await queue.enqueue(uuid.uuid4(), "normal")
    [delivered, *_] = await queue.read("w1", 1, 10)
    positions = await queue.positions()
    assert positions["normal"].lag == 2
    millis = int(delivered.entry_id.split("-")[0])
    assert positions["normal"].last_delivered == datetime.fromtimestamp(millis / 1000, UTC)
    assert abs(positions["normal"].last_delivered - datetime.now(UTC)) < timedelta(seconds=5)
    await client.delete(STREAMS["high"])  # Redis lost the stream
    assert (await queue.positions())["high"] is None
    await client.xgroup_destroy(STREAMS["normal"], GROUP)  # ... or the group
    assert (await queue.positions())["normal"] is None


async def test_streams_are_capped_at_100000_entries(
    queue: RedisTaskQueue, client: redis.Redis
) -> None:
    """Acknowledged entries are trimmed away, so a stream's memory is bounded: approximately
    (Redis trims whole nodes of up to 100 entries)."""
    fill = "for i = 1, 100000 do redis.call('XADD', KEYS[1], '*', 'task_id', ARGV[1]) end"
    await client.eval(fill, 1, STREAMS["normal"], str(uuid.uuid4()))
    assert await client.xlen(STREAMS["normal"]) == 100_000
    for _ in range(150):
        await queue.enqueue(uuid.uuid4(), "normal")
    assert 100_000 <= await client.xlen(STREAMS["normal"]) < 100_100  # 150 added
    await queue.enqueue_many([(uuid.uuid4(), "normal") for _ in range(150)])
    assert 100_000 <= await client.xlen(STREAMS["normal"]) < 100_100  # 300 added
    await client.xtrim(STREAMS["normal"], maxlen=100_000, approximate=False)
    entries = await queue.read("w1", 150, 10)
    for entry in entries:
        await queue.give_back(entry)
    assert 100_000 <= await client.xlen(STREAMS["normal"]) < 100_100  # 150 given back


class HighArrivesBetweenReads:
    """The client, but a high-priority task arrives right after the first (high only) read."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.reads = 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    async def xreadgroup(self, *args, **kwargs):
        reply = await self._client.xreadgroup(*args, **kwargs)
        self.reads += 1
        if self.reads == 1:
            await self._client.xadd(STREAMS["high"], {"task_id": str(HIGH_LATE)})
        return reply


HIGH_LATE = uuid.UUID(int=7)


async def test_a_read_over_both_streams_puts_high_priority_first(client: redis.Redis) -> None:
    await RedisTaskQueue(client).ensure_group()
    normal = uuid.uuid4()
    await RedisTaskQueue(client).enqueue(normal, "normal")
    racing = HighArrivesBetweenReads(client)
    entries = await RedisTaskQueue(racing).read("w1", 10, 10)
    assert racing.reads == 2
    assert [(e.task_id, e.priority) for e in entries] == [(HIGH_LATE, "high"), (normal, "normal")]
