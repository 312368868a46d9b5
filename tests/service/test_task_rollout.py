"""Expand-then-contract: during a rollout the previous release's API pods and workers run on the
schema of migration 0002 next to the new code, and each side handles the other's rows; the
migration also goes down and up again with the data in place."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable

import pytest
from agent_service.core.queue import RedisTaskQueue
from agent_service.core.reconciler import Reconciler
from agent_service.migrate import downgrade, upgrade
from agent_service.storage.task_repository import TaskRepository
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from . import legacy_tasks
from .conftest import KEY, Api

LEASE = 2.0
OWNER = hashlib.sha256(KEY.encode()).hexdigest()[:16]  # the API's owner id of the test key


async def _create_old(old: legacy_tasks.TaskRepository, prompt: str, key: str | None = None):
    row, created = await old.create(
        owner=OWNER, prompt=prompt, priority="normal", idempotency_key=key, request_hash="h"
    )
    return row, created


async def test_the_previous_release_works_on_the_new_schema(api_pg: Api) -> None:
    engine = api_pg.app.state.engine
    old, new = legacy_tasks.TaskRepository(engine), TaskRepository(engine, LEASE)

    # An old API pod stores a task; a new worker runs it; the new API reads it.
    row, created = await _create_old(old, "from an old pod", key="k-1")
    assert created
    assert (await new.claim(row.id, "new-worker")).attempts == 1
    assert await new.finish(row.id, "succeeded", result="done")
    body = (await api_pg.client.get(f"/v1/tasks/{row.id}")).json()
    assert (body["status"], body["result"]) == ("succeeded", "done")
    again, created = await _create_old(old, "from an old pod", key="k-1")  # its idempotency
    assert (again.id, created) == (row.id, False)

    # A new API pod stores a task; an old worker claims, gives back, claims and finishes it.
    submitted = await api_pg.client.post("/v1/tasks", json={"prompt": "from a new pod"})
    task_id = uuid.UUID(submitted.json()["id"])
    assert (await old.claim(task_id, "old-worker")).attempts == 1
    assert await old.requeue(task_id, "old-worker")
    assert (await old.claim(task_id, "old-worker")).attempts == 2
    assert await old.finish(task_id, "succeeded", result="old")
    assert (await api_pg.client.get(f"/v1/tasks/{task_id}")).json()["status"] == "succeeded"

    # Old cancels and listings work too.
    row, _ = await _create_old(old, "cancel me")
    assert (await old.cancel(row.id, OWNER)).status == "cancelled"
    assert await old.unfinished() == []


async def test_a_task_an_old_worker_runs_is_taken_over_only_after_the_lease(api_pg: Api) -> None:
    """An old worker sets no lease: its claim counts as leased for the idle period from
    started_at, so a live old worker keeps its task and a dead one's is handed out again."""
    engine = api_pg.app.state.engine
    old, new = legacy_tasks.TaskRepository(engine), TaskRepository(engine, LEASE)
    reconciler = Reconciler(new, RedisTaskQueue(api_pg.app.state.redis.client), LEASE)
    submitted = await api_pg.client.post("/v1/tasks", json={"prompt": "held by an old worker"})
    task_id = uuid.UUID(submitted.json()["id"])
    assert (await old.claim(task_id, "old-worker")).attempts == 1

    assert await new.claim(task_id, "new-worker") is None
    assert await reconciler.run_once() == 0
    await asyncio.sleep(LEASE + 0.2)
    assert await reconciler.run_once() == 1  # its worker is silent past the lease: handed out
    claimed = await new.claim(task_id, "new-worker")
    assert claimed.attempts == 2
    # The old worker, late, still finishes it: recorded once, whoever is first.
    assert await old.finish(task_id, "succeeded", result="late but first")
    assert await new.finish(task_id, "succeeded", result="second") is False


async def test_an_old_pods_task_that_redis_lost_is_handed_out(api_pg: Api) -> None:
    engine = api_pg.app.state.engine
    old = legacy_tasks.TaskRepository(engine)
    reconciler = Reconciler(
        TaskRepository(engine, 0.2), RedisTaskQueue(api_pg.app.state.redis.client), 0.2
    )
    await _create_old(old, "stored by an old pod, never enqueued")  # no queued_at
    await asyncio.sleep(0.3)
    assert await reconciler.run_once() == 1  # waiting since created_at


@pytest.fixture
def migrated_database(throwaway_database: Callable[..., str]) -> str:
    return throwaway_database(migrated=True)


async def test_the_migration_goes_down_and_up_with_the_data(migrated_database: str) -> None:
    engine = create_async_engine(migrated_database)
    try:
        new = TaskRepository(engine, LEASE)
        row, _ = await new.create(
            owner="o", prompt="p", priority="normal", idempotency_key=None, request_hash="h"
        )
        assert (await new.claim(row.id, "w")).attempts == 1
        await downgrade(engine, "0001")  # a rollback of this release
        old = legacy_tasks.TaskRepository(engine)
        assert await old.finish(row.id, "succeeded", result="after the rollback")
        await upgrade(engine)
        async with engine.connect() as conn:
            found = (
                await conn.execute(text("SELECT status, queued_at, lease_expires_at FROM tasks"))
            ).all()
        assert [tuple(r) for r in found] == [("succeeded", None, None)]
    finally:
        await engine.dispose()
