"""Task queues: Redis Streams with a consumer group (two streams, high before normal), or an
in-process priority queue when REDIS_URL is unset.

Redis only hands work out; PostgreSQL is the record of every task. Redis can lose the streams
and the group (a restart without persistence, a failover, an eviction): workers recreate the
group when a command answers NOGROUP (`ensure_group`), and the reconciler re-enqueues what
PostgreSQL says is waiting or abandoned (core/reconciler.py).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.exceptions import ResponseError

STREAMS = {"high": "agent:tasks:high", "normal": "agent:tasks:normal"}
GROUP = "agent-workers"
_MAXLEN = 100_000  # acknowledged entries are trimmed away approximately at this length


def is_nogroup(exc: BaseException) -> bool:
    """Redis answered that the stream or our consumer group does not exist (it lost them)."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Position:
    """How far the consumer group has read a stream: the time of the last entry it delivered
    (entry ids start with Redis' clock in ms) and how many entries wait undelivered (`lag`,
    None when Redis cannot tell)."""

    last_delivered: datetime
    lag: int | None

    @classmethod
    def of(cls, group: dict) -> Position:
        millis = int(_text(group["last-delivered-id"]).split("-")[0])
        return cls(datetime.fromtimestamp(millis / 1000, UTC), group.get("lag"))


@dataclass(frozen=True)
class Entry:
    """One delivery of a task: the stream entry to acknowledge and the task it names."""

    stream: str
    entry_id: str
    task_id: uuid.UUID
    priority: str


class RedisTaskQueue:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    async def enqueue(self, task_id: uuid.UUID, priority: str) -> None:
        await self._client.xadd(
            STREAMS[priority], {"task_id": str(task_id)}, maxlen=_MAXLEN, approximate=True
        )

    async def enqueue_many(self, tasks: Iterable[tuple[uuid.UUID, str]]) -> None:
        """Add (task id, priority) pairs in one round trip."""
        async with self._client.pipeline(transaction=False) as pipe:
            for task_id, priority in tasks:
                pipe.xadd(
                    STREAMS[priority], {"task_id": str(task_id)}, maxlen=_MAXLEN, approximate=True
                )
            await pipe.execute()

    async def ensure_group(self) -> None:
        """Create the streams and the group where they are missing (a no-op where they exist).

        The group starts at id 0, not `$`: a stream without our group is one Redis recreated
        after losing it (the API's XADD makes a new stream), so every entry in it was added
        since, and each is a task to run. At `$` those entries would wait for the reconciler.
        Had a stream kept old entries (the group deleted by hand), they are delivered again and
        the conditional claim skips each task already finished or held under a live lease."""
        for stream in STREAMS.values():
            try:
                await self._client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def positions(self) -> dict[str, Position | None]:
        """Per priority, how far the group has read its stream; None when the stream or the
        group is missing."""
        out: dict[str, Position | None] = {}
        for priority, stream in STREAMS.items():
            try:
                groups = await self._client.xinfo_groups(stream)
            except ResponseError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                groups = []
            ours = next((g for g in groups if _text(g["name"]) == GROUP), None)
            out[priority] = None if ours is None else Position.of(ours)
        return out

    @staticmethod
    def _entries(stream: bytes | str, items: list) -> list[Entry]:
        name = stream.decode() if isinstance(stream, bytes) else stream
        priority = "high" if name == STREAMS["high"] else "normal"
        out = []
        for entry_id, fields in items:
            if not fields:  # deleted while pending
                continue
            eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            out.append(Entry(name, eid, uuid.UUID(fields[b"task_id"].decode()), priority))
        return out

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for `consumer`, high priority first."""
        high = await self._client.xreadgroup(GROUP, consumer, {STREAMS["high"]: ">"}, count=count)
        if not high:
            high = await self._client.xreadgroup(
                GROUP,
                consumer,
                {STREAMS["high"]: ">", STREAMS["normal"]: ">"},
                count=count,
                block=block_ms,
            )
        entries = [e for stream, items in high or [] for e in self._entries(stream, items)]
        entries.sort(key=lambda e: e.priority != "high")
        return entries

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries pending longer than `min_idle_ms` on any consumer (one that died)."""
        entries: list[Entry] = []
        for stream in STREAMS.values():
            if len(entries) >= count:
                break
            _, claimed, _ = await self._client.xautoclaim(
                stream, GROUP, consumer, min_idle_ms, "0-0", count=count - len(entries)
            )
            entries.extend(self._entries(stream, claimed))
        return entries

    async def heartbeat(self, consumer: str, entries: list[Entry]) -> None:
        """Reset the idle time of entries still being worked on, so nobody reclaims them."""
        for entry in entries:
            await self._client.xclaim(
                entry.stream, GROUP, consumer, 0, [entry.entry_id], justid=True
            )

    async def ack(self, entry: Entry) -> None:
        await self._client.xack(entry.stream, GROUP, entry.entry_id)

    async def give_back(self, entry: Entry) -> None:
        """Put a task back for another worker now (not after the reclaim timeout)."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(entry.stream, {"task_id": str(entry.task_id)}, maxlen=_MAXLEN)
            pipe.xack(entry.stream, GROUP, entry.entry_id)
            await pipe.execute()


class LocalTaskQueue:
    """In-process priority queue (FIFO within a priority) for the embedded default."""

    def __init__(self) -> None:
        self._queue: asyncio.PriorityQueue[tuple[int, int, uuid.UUID]] = asyncio.PriorityQueue()
        self._seq = itertools.count()

    async def enqueue(self, task_id: uuid.UUID, priority: str) -> None:
        self._queue.put_nowait((0 if priority == "high" else 1, next(self._seq), task_id))

    async def get(self) -> uuid.UUID:
        return (await self._queue.get())[2]
