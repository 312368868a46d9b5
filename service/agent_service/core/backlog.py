"""The task queue's backlog per priority, counted as KEDA's redis-streams scaler counts it.

Depth = entries waiting for the consumer group (`lag` of XINFO GROUPS, KEDA's `lagCount`) +
entries delivered and not acknowledged yet (the XPENDING summary, KEDA's
`pendingEntriesCount`). The oldest age is that of the oldest of them: XPENDING's smallest id,
or with nothing pending the first id after the group's last-delivered id (XRANGE, exclusive
start; a waiting entry is always younger than a delivered one).
Entry ids begin with Redis' clock in milliseconds and `now` is Redis' TIME, so no clock skew
between pods enters the age. A task given back or handed out again gets a new entry: its age
restarts.

One round trip (TIME, and XINFO GROUPS + XPENDING per stream), and a second only for a stream
with entries waiting and none pending. Where Redis cannot tell the lag (entries deleted from
the middle of a stream with XDEL, which the service never does) or our group is missing (Redis
lost it; the workers recreate it at id 0), the waiting entries are counted with XRANGE, up to
COUNT_LIMIT.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import ResponseError

from .queue import GROUP, STREAMS

COUNT_LIMIT = 1000


@dataclass(frozen=True)
class Backlog:
    """One priority's queue: entries waiting or pending, and the oldest one's age (0 if none)."""

    depth: int
    oldest_age_seconds: float


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _millis(entry_id: bytes | str) -> int:
    return int(_text(entry_id).split("-")[0])


def _missing(reply: object) -> bool:
    return isinstance(reply, ResponseError) and "no such key" in str(reply).lower()


async def measure(client: redis.Redis) -> dict[str, Backlog]:
    """Per priority, the backlog now (Redis errors propagate)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.time()
        for stream in STREAMS.values():
            pipe.xinfo_groups(stream)
            pipe.xpending(stream, GROUP)
        replies = await pipe.execute(raise_on_error=False)
    seconds, micros = replies[0]
    now_ms = seconds * 1000 + micros / 1000

    counted: dict[str, tuple[int, int | None]] = {}  # priority: (entries, oldest id's ms)
    # Second round: (priority, XRANGE start, count, whether the entries are to be counted).
    follow_up: list[tuple[str, str, int, bool]] = []
    for i, priority in enumerate(STREAMS):
        groups, pending = replies[1 + 2 * i], replies[2 + 2 * i]
        if _missing(groups):  # no stream: nothing queued
            counted[priority] = (0, None)
            continue
        if isinstance(groups, Exception):
            raise groups
        ours = next((g for g in groups if _text(g["name"]) == GROUP), None)
        if ours is None:
            # The stream outlived our group (Redis lost it): workers recreate the group at
            # id 0, so every entry of the stream is waiting.
            counted[priority] = (0, None)
            follow_up.append((priority, "-", COUNT_LIMIT, True))
            continue
        if isinstance(pending, Exception):
            raise pending
        depth = pending["pending"]
        oldest = _millis(pending["min"]) if depth else None
        lag = ours.get("lag")
        after = "(" + _text(ours["last-delivered-id"])
        if lag is None:
            follow_up.append((priority, after, COUNT_LIMIT, True))
        elif lag > 0:
            depth += lag
            if oldest is None:
                follow_up.append((priority, after, 1, False))  # the first waiting entry's id
        counted[priority] = (depth, oldest)

    if follow_up:
        async with client.pipeline(transaction=False) as pipe:
            for priority, start, count, _ in follow_up:
                pipe.xrange(STREAMS[priority], min=start, max="+", count=count)
            ranges = await pipe.execute()
        for (priority, _, _, count_them), entries in zip(follow_up, ranges, strict=True):
            depth, oldest = counted[priority]
            if count_them:
                depth += len(entries)
            if entries and oldest is None:
                oldest = _millis(entries[0][0])
            counted[priority] = (depth, oldest)

    return {
        priority: Backlog(depth, max(now_ms - oldest, 0.0) / 1000 if oldest is not None else 0.0)
        for priority, (depth, oldest) in counted.items()
    }
