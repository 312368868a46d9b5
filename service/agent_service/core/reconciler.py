"""The reconciler: hands out again the tasks PostgreSQL holds but Redis no longer does.

Every worker runs it every TASK_RECONCILE_SECONDS. It re-enqueues

- a running task whose lease lapsed (its worker died, hung, or lost the database for
  TASK_RECLAIM_IDLE_SECONDS): the attempt it used counts, as a failure;
- a queued task that has waited TASK_RECLAIM_IDLE_SECONDS when Redis can no longer deliver it:
  its stream or the consumer group is gone, the group has nothing left to deliver (lag 0), or
  the group has already delivered past the time it was queued. A task merely waiting in a long
  backlog is left alone, so a backlog is never duplicated.

Duplicates are harmless: a task is claimed only while queued or after its lease lapsed, and
completed by a conditional update, so it completes exactly once. Several reconcilers (one per
worker) run safely at once: each row is taken by one statement (FOR UPDATE SKIP LOCKED), and a
row handed out is queued as of now, so none takes it again for another idle period.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..storage.repositories import utcnow
from ..storage.task_repository import TaskRepository
from .queue import STREAMS, Position, RedisTaskQueue

log = logging.getLogger(__name__)

# Entry ids carry Redis' clock, `queued_at` the API pod's: compare them with this much room.
CLOCK_MARGIN = timedelta(seconds=1)
BATCH = 500  # rows per statement; a pass repeats until it hands out fewer


class Reconciler:
    def __init__(
        self, repo: TaskRepository, queue: RedisTaskQueue, idle_seconds: float, batch: int = BATCH
    ) -> None:
        self._repo = repo
        self._queue = queue
        self._idle = timedelta(seconds=idle_seconds)
        self._batch = batch

    def _queued_before(self, now: datetime, position: Position | None) -> datetime:
        """Queued tasks of one stream older than this are handed out again."""
        overdue = now - self._idle
        if position is None or not position.lag:
            # No stream or group (Redis lost them), or nothing undelivered (or Redis cannot
            # tell): no entry of an overdue task is still waiting.
            return overdue
        # Entries wait undelivered: only a task queued before the group's read position has
        # certainly lost its entry (delivered and dropped, or never stored).
        return min(overdue, position.last_delivered - CLOCK_MARGIN)

    async def run_once(self) -> int:
        """One pass; how many tasks it handed out. Redis and database errors propagate."""
        positions = await self._queue.positions()
        now = utcnow()
        queued_before = {p: self._queued_before(now, positions.get(p)) for p in STREAMS}
        total = 0
        while True:
            rows = await self._repo.hand_out_again(queued_before, self._batch, now=now)
            if rows:
                # Marked queued as of now before this: a failed XADD is retried by a later pass.
                await self._queue.enqueue_many((row.id, row.priority) for row in rows)
                total += len(rows)
                log.warning(
                    "tasks handed out again",
                    extra={"count": len(rows), "task_ids": [str(r.id) for r in rows[:20]]},
                )
            if len(rows) < self._batch:
                return total
