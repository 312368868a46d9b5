"""Task rows: every state change is a conditional update, so each happens exactly once.

PostgreSQL is the record of every task; Redis only hands the work out. A task is `queued` until
a worker claims it (`running`, with a lease its worker renews), then finished once
(`succeeded`, `failed`) or `cancelled`. A queued task that has not started for
`lease_seconds` (its queue entry may be lost), and a running one whose lease lapsed (its worker
died), are handed out again (`hand_out_again`, the reconciler's statement).

Rows the previous release wrote have NULL `queued_at` and `lease_expires_at` (migration 0002):
a NULL `queued_at` reads as `created_at`, and a task it claimed counts as leased for
`lease_seconds` from its `started_at`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import autocommit, connect
from .repositories import record_of, utcnow
from .tables import tasks

_queued_since = func.coalesce(tasks.c.queued_at, tasks.c.created_at)


class TaskConflict(Exception):
    """The idempotency key was used before with a different request."""


class TaskRepository:
    """Task rows. `lease_seconds` is how long a running task stays its worker's without a
    renewal, and how long a queued one may wait before it is handed out again."""

    def __init__(self, engine: AsyncEngine, lease_seconds: float) -> None:
        self._engine = autocommit(engine)
        self._lease = timedelta(seconds=lease_seconds)

    def _lapsed(self, now: datetime) -> Any:
        """A running task nobody holds any more. Our claims set a lease from `started_at` on;
        a claim by the previous release sets `started_at` only (the lease is NULL or older):
        that one counts as leased for `lease_seconds` from `started_at`."""
        lease, started = tasks.c.lease_expires_at, tasks.c.started_at
        return and_(
            tasks.c.status == "running",
            or_(
                and_(lease >= started, lease < now),
                and_(or_(lease.is_(None), lease < started), started < now - self._lease),
            ),
        )

    async def create(
        self,
        *,
        owner: str,
        prompt: str,
        priority: str,
        idempotency_key: str | None,
        request_hash: str,
    ) -> tuple[Row, bool]:
        """Insert a queued task; with a known idempotency key return the first one instead.

        Returns (row, created).
        """
        now = utcnow()
        values = {
            "id": uuid.uuid4(),
            "owner": owner,
            "prompt": prompt,
            "priority": priority,
            "status": "queued",
            "result": None,
            "error": None,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "attempts": 0,
            "worker": None,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "queued_at": now,
            "lease_expires_at": None,
        }
        try:
            async with connect(self._engine) as conn:
                await conn.execute(insert(tasks).values(values))
            return record_of(values), True
        except IntegrityError:
            if idempotency_key is None:
                raise
        async with connect(self._engine) as conn:
            existing = (
                await conn.execute(
                    select(tasks).where(
                        tasks.c.owner == owner, tasks.c.idempotency_key == idempotency_key
                    )
                )
            ).one()
        if existing.request_hash != request_hash:
            raise TaskConflict
        return existing, False

    async def get(self, task_id: uuid.UUID, owner: str | None = None) -> Row | None:
        query = select(tasks).where(tasks.c.id == task_id)
        if owner is not None:
            query = query.where(tasks.c.owner == owner)
        async with connect(self._engine) as conn:
            return (await conn.execute(query)).first()

    async def cancel(self, task_id: uuid.UUID, owner: str) -> Row | None:
        """Cancel a queued or running task; None when it is unknown or already finished."""
        async with connect(self._engine) as conn:
            result = await conn.execute(
                update(tasks)
                .where(
                    tasks.c.id == task_id,
                    tasks.c.owner == owner,
                    tasks.c.status.in_(("queued", "running")),
                )
                .values(status="cancelled", finished_at=utcnow())
                .returning(*tasks.c)
            )
            return result.first()

    async def claim(self, task_id: uuid.UUID, worker: str) -> Row | None:
        """Mark the task running for `worker`, with a fresh lease; None when it is finished,
        cancelled, or running under another worker's live lease (a duplicate delivery)."""
        now = utcnow()
        async with connect(self._engine) as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, or_(tasks.c.status == "queued", self._lapsed(now)))
                .values(
                    status="running",
                    attempts=tasks.c.attempts + 1,
                    worker=worker,
                    started_at=now,
                    lease_expires_at=now + self._lease,
                )
                .returning(tasks.c.id, tasks.c.prompt, tasks.c.priority, tasks.c.attempts)
            )
            return result.first()

    async def renew(self, task_ids: list[uuid.UUID], worker: str) -> int:
        """Extend the leases of the tasks `worker` is running; how many it still holds."""
        if not task_ids:
            return 0
        now = utcnow()
        async with connect(self._engine) as conn:
            renewed = await conn.execute(
                update(tasks)
                .where(
                    tasks.c.id.in_(task_ids),
                    tasks.c.status == "running",
                    tasks.c.worker == worker,
                )
                .values(lease_expires_at=now + self._lease)
            )
            return renewed.rowcount

    async def finish(
        self, task_id: uuid.UUID, status: str, result: str | None = None, error: str | None = None
    ) -> bool:
        """Record the outcome unless another attempt (or a cancel) already did: exactly once."""
        async with connect(self._engine) as conn:
            updated = await conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == "running")
                .values(status=status, result=result, error=error, finished_at=utcnow())
            )
            return updated.rowcount == 1

    async def requeue(self, task_id: uuid.UUID, worker: str) -> bool:
        """Give back a task this worker is running (graceful shutdown). Not a failure, so the
        attempt its claim counted is taken back: rollouts never use up a task's attempts."""
        async with connect(self._engine) as conn:
            updated = await conn.execute(
                update(tasks)
                .where(
                    tasks.c.id == task_id,
                    tasks.c.status == "running",
                    tasks.c.worker == worker,
                )
                .values(
                    status="queued",
                    worker=None,
                    attempts=tasks.c.attempts - 1,
                    queued_at=utcnow(),
                    lease_expires_at=None,
                )
            )
            return updated.rowcount == 1

    async def requeue_running(self) -> int:
        """Put every running task back in the queue: only for the embedded default's single
        process, whose tasks nobody else can be running when it starts."""
        async with connect(self._engine) as conn:
            updated = await conn.execute(
                update(tasks)
                .where(tasks.c.status == "running")
                .values(status="queued", worker=None, queued_at=utcnow(), lease_expires_at=None)
            )
            return updated.rowcount

    async def unfinished(self) -> list[Row]:
        """Queued or running tasks, oldest first (the in-process queue reloads them on start)."""
        async with connect(self._engine) as conn:
            rows = await conn.execute(
                select(tasks.c.id, tasks.c.priority)
                .where(tasks.c.status.in_(("queued", "running")))
                .order_by(tasks.c.created_at)
            )
            return list(rows.all())

    async def hand_out_again(
        self, queued_before: dict[str, datetime], limit: int, now: datetime | None = None
    ) -> list[Row]:
        """Mark for re-enqueueing, and return as (id, priority), up to `limit` tasks: those of
        each priority queued before `queued_before[priority]`, and running ones whose lease
        lapsed. They become (again) `queued` as of now, so the next pass leaves them alone for
        `lease_seconds`. Safe with several reconcilers at once: each row is locked by one
        statement (FOR UPDATE SKIP LOCKED) and no longer matches once it is updated."""
        now = now or utcnow()
        waiting = or_(
            false(),
            *(
                and_(tasks.c.priority == priority, _queued_since < before)
                for priority, before in queued_before.items()
            ),
        )
        stale = (
            select(tasks.c.id)
            .where(or_(and_(tasks.c.status == "queued", waiting), self._lapsed(now)))
            .order_by(tasks.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with connect(self._engine) as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.id.in_(stale.scalar_subquery()))
                .values(status="queued", worker=None, queued_at=now, lease_expires_at=None)
                .returning(tasks.c.id, tasks.c.priority)
            )
            return list(result.all())
