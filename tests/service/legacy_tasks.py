"""The previous release's task statements, verbatim: what its API pods and workers run during a
rollout, after the migration Job has applied this release's schema (expand-then-contract).

Copied from service/agent_service/storage/repositories.py (TaskRepository) and
service/agent_service/storage/tables.py (the `tasks` table) as they were before migration 0002,
commit 32a7934. Only the imports differ: the old table is defined here, and the shared helpers
(`autocommit`, `connect`, `record_of`, `utcnow`) are unchanged in this release. Kept so
test_task_rollout.py proves the old code keeps working on the new schema; delete it with the
contract step (see migrations/versions/0002_task_leases.py).
"""

from __future__ import annotations

import uuid

from agent_service.storage.db import autocommit, connect
from agent_service.storage.repositories import record_of, utcnow
from agent_service.storage.tables import UTCDateTime
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

tasks = Table(
    "tasks",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("owner", String(32), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("result", Text),
    Column("error", Text),
    Column("idempotency_key", String(255)),
    Column("request_hash", String(64)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("worker", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    UniqueConstraint("owner", "idempotency_key"),
)


class TaskConflict(Exception):
    """The idempotency key was used before with a different request."""


class TaskRepository:
    """Task rows; state changes are conditional updates so each happens exactly once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)

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
            "created_at": utcnow(),
            "started_at": None,
            "finished_at": None,
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

    async def delete(self, task_id: uuid.UUID) -> None:
        async with connect(self._engine) as conn:
            await conn.execute(delete(tasks).where(tasks.c.id == task_id))

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
        """Mark the task running for `worker`; None when it is finished or cancelled.

        A task already `running` can be claimed again: that is a reclaim after its worker died.
        """
        async with connect(self._engine) as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status.in_(("queued", "running")))
                .values(
                    status="running",
                    attempts=tasks.c.attempts + 1,
                    worker=worker,
                    started_at=utcnow(),
                )
                .returning(tasks.c.id, tasks.c.prompt, tasks.c.priority, tasks.c.attempts)
            )
            return result.first()

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
        """Give a task this worker is running back to the queue (graceful shutdown)."""
        async with connect(self._engine) as conn:
            updated = await conn.execute(
                update(tasks)
                .where(
                    and_(tasks.c.id == task_id, tasks.c.status == "running"),
                    tasks.c.worker == worker,
                )
                .values(status="queued", worker=None)
            )
            return updated.rowcount == 1

    async def unfinished(self) -> list[Row]:
        """Queued or running tasks, oldest first (the in-process queue reloads them on start)."""
        async with connect(self._engine) as conn:
            rows = await conn.execute(
                select(tasks.c.id, tasks.c.priority)
                .where(tasks.c.status.in_(("queued", "running")))
                .order_by(tasks.c.created_at)
            )
            return list(rows.all())
