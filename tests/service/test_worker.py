"""The Redis Streams worker against real Redis and PostgreSQL: completion, priority order,
reclaim of a dead consumer's task, exactly-once completion, cancel, graceful give-back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from agent_service.config import Settings
from agent_service.core.metrics import Metrics
from agent_service.core.models.local import LocalBackend
from agent_service.core.queue import GROUP, STREAMS
from agent_service.core.redis import create_redis
from agent_service.storage.repositories import TaskRepository
from agent_service.worker import Worker, build_worker
from sqlalchemy.ext.asyncio import create_async_engine

from bench.polling import eventually

from .conftest import Api, base_settings, run_app
from .fakes import GatedModel


@pytest.fixture
async def api_pg(pg_stack: dict) -> AsyncIterator[Api]:
    async with run_app(base_settings(**pg_stack)) as running:
        yield running


@asynccontextmanager
async def running_worker(
    settings: Settings,
    model=None,
    metrics: Metrics | None = None,
) -> AsyncIterator[Worker]:
    """The real worker loop as a background task, stopped (gracefully) on exit."""
    engine = create_async_engine(settings.database_url)
    client = create_redis(settings.redis_url, timeout=2.0, max_connections=16)
    worker = build_worker(
        settings,
        engine,
        client,
        model or LocalBackend("local-echo-1"),
        metrics or Metrics(),
        block_ms=100,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()
        await engine.dispose()


def worker_settings(pg_stack: dict, **overrides: object) -> Settings:
    return base_settings(**pg_stack, **{"task_reclaim_idle_seconds": 30, **overrides})


async def _task(api: Api, task_id: str) -> dict:
    return (await api.client.get(f"/v1/tasks/{task_id}")).json()


async def _until_status(api: Api, task_id: str, *statuses: str) -> dict:
    async def check() -> dict | None:
        body = await _task(api, task_id)
        return body if body["status"] in statuses else None

    return await eventually(check)


async def _pending(api: Api) -> int:
    client = api.app.state.redis.client
    total = 0
    for stream in STREAMS.values():
        total += (await client.xpending(stream, GROUP))["pending"]
    return total


async def test_worker_completes_tasks_and_acknowledges_them(api_pg: Api, pg_stack: dict) -> None:
    ids = [
        (await api_pg.client.post("/v1/tasks", json={"prompt": f"task {i}"})).json()["id"]
        for i in range(5)
    ]
    metrics = Metrics()
    async with running_worker(worker_settings(pg_stack), metrics=metrics) as worker:
        done = [await _until_status(api_pg, i, "succeeded") for i in ids]
        await eventually(lambda: worker.processed == 5)
    assert done[3]["result"].startswith("Turn 1: you said 'task 3'")
    assert all(t["attempts"] == 1 for t in done)
    assert await _pending(api_pg) == 0
    assert metrics.tasks.labels("normal", "succeeded")._value.get() == 5


async def test_high_priority_runs_first(api_pg: Api, pg_stack: dict) -> None:
    normal = [
        (await api_pg.client.post("/v1/tasks", json={"prompt": f"n{i}"})).json()["id"]
        for i in range(3)
    ]
    high = [
        (
            await api_pg.client.post("/v1/tasks", json={"prompt": f"h{i}", "priority": "high"})
        ).json()["id"]
        for i in range(2)
    ]
    async with running_worker(worker_settings(pg_stack, worker_concurrency=1)):
        finished = [await _until_status(api_pg, i, "succeeded") for i in normal + high]
    order = [t["prompt"] for t in sorted(finished, key=lambda t: t["started_at"])]
    assert order == ["h0", "h1", "n0", "n1", "n2"]


async def test_a_dead_workers_task_is_reclaimed(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "orphan"})).json()["id"]
    redis = api_pg.app.state.redis.client
    # A consumer takes the entry, marks the task running, and dies without acknowledging.
    await redis.xgroup_create(STREAMS["normal"], GROUP, id="0", mkstream=True)
    taken = await redis.xreadgroup(GROUP, "dead-consumer", {STREAMS["normal"]: ">"}, count=1)
    assert len(taken[0][1]) == 1
    repo = TaskRepository(api_pg.app.state.engine)
    assert (await repo.claim(uuid.UUID(task_id), "dead-consumer")).attempts == 1
    assert (await _task(api_pg, task_id))["status"] == "running"

    async with running_worker(worker_settings(pg_stack, task_reclaim_idle_seconds=0.3)):
        done = await _until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: _no_pending(api_pg))
    assert done["attempts"] == 2
    assert done["result"].startswith("Turn 1: you said 'orphan'")
    consumers = await redis.xinfo_consumers(STREAMS["normal"], GROUP)
    assert {c["name"].decode(): c["pending"] for c in consumers}["dead-consumer"] == 0


async def _no_pending(api: Api) -> bool:
    return await _pending(api) == 0


async def test_each_task_completes_exactly_once(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "once"})).json()["id"]
    redis = api_pg.app.state.redis.client
    # The same task delivered three times (a retried enqueue, a reclaim...), two workers.
    for _ in range(2):
        await redis.xadd(STREAMS["normal"], {"task_id": task_id})
    model = GatedModel()
    metrics = Metrics()
    settings = worker_settings(pg_stack)
    async with (
        running_worker(settings.model_copy(update={"pod_name": "w1"}), model, metrics),
        running_worker(settings.model_copy(update={"pod_name": "w2"}), model, metrics),
    ):
        # Both workers hold the same task at once before either may finish.
        await eventually(lambda: model.waiting >= 2)
        model.release()
        await _until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: _no_pending(api_pg))
    assert metrics.tasks.labels("normal", "succeeded")._value.get() == 1
    task = await _task(api_pg, task_id)
    assert task["result"] == "gated: once"
    assert task["attempts"] == 3


async def test_a_cancelled_task_is_not_run(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "never"})).json()["id"]
    await api_pg.client.post(f"/v1/tasks/{task_id}/cancel")
    model = GatedModel()
    model.release()
    async with running_worker(worker_settings(pg_stack), model) as worker:
        await eventually(lambda: worker.processed == 1)
    assert model.calls == []
    task = await _task(api_pg, task_id)
    assert (task["status"], task["attempts"], task["result"]) == ("cancelled", 0, None)


async def test_cancel_while_running_discards_the_result(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "slow"})).json()["id"]
    model = GatedModel()
    async with running_worker(worker_settings(pg_stack), model) as worker:
        await eventually(lambda: model.waiting == 1)
        cancelled = await api_pg.client.post(f"/v1/tasks/{task_id}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        model.release()
        await eventually(lambda: worker.processed == 1)
    task = await _task(api_pg, task_id)
    assert (task["status"], task["result"]) == ("cancelled", None)
    assert await _pending(api_pg) == 0


async def test_shutdown_gives_unfinished_tasks_back(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "interrupted"})).json()["id"]
    redis = api_pg.app.state.redis.client
    model = GatedModel()  # never released: the task is still running at shutdown
    async with running_worker(worker_settings(pg_stack, shutdown_timeout_seconds=0.1), model):
        await _until_status(api_pg, task_id, "running")
    task = await _task(api_pg, task_id)
    assert task["status"] == "queued"
    assert await _pending(api_pg) == 0  # the old delivery is acknowledged...
    entries = await redis.xrange(STREAMS["normal"])
    assert [e[1][b"task_id"].decode() for e in entries] == [task_id, task_id]  # ...and re-added

    async with running_worker(worker_settings(pg_stack)):  # the next worker finishes it
        done = await _until_status(api_pg, task_id, "succeeded")
    assert done["attempts"] == 2


async def test_a_task_that_keeps_failing_is_given_up(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "poison"})).json()["id"]
    repo = TaskRepository(api_pg.app.state.engine)
    for _ in range(3):  # three workers died on it
        await repo.claim(uuid.UUID(task_id), "dead")
    async with running_worker(worker_settings(pg_stack, task_max_attempts=3)):
        task = await _until_status(api_pg, task_id, "failed")
    assert task["error"] == "gave up after 3 attempts"
