"""The Redis Streams worker against real Redis and PostgreSQL: completion, priority order,
reclaim of a dead consumer's task, exactly-once completion, cancel, graceful give-back."""

from __future__ import annotations

import asyncio
import uuid

from agent_service.core.metrics import Metrics
from agent_service.core.queue import GROUP, STREAMS
from agent_service.storage.task_repository import TaskRepository

from bench.polling import eventually

from .conftest import Api
from .fakes import GatedModel
from .workers import no_pending as _no_pending
from .workers import pending as _pending
from .workers import running_worker, worker_settings
from .workers import task as _task
from .workers import until_status as _until_status


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
    repo = TaskRepository(api_pg.app.state.engine, lease_seconds=0.3)
    assert (await repo.claim(uuid.UUID(task_id), "dead-consumer")).attempts == 1
    assert (await _task(api_pg, task_id))["status"] == "running"

    async with running_worker(worker_settings(pg_stack, task_reclaim_idle_seconds=0.3)):
        done = await _until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: _no_pending(api_pg))
    assert done["attempts"] == 2
    assert done["result"].startswith("Turn 1: you said 'orphan'")
    consumers = await redis.xinfo_consumers(STREAMS["normal"], GROUP)
    assert {c["name"].decode(): c["pending"] for c in consumers}["dead-consumer"] == 0


async def test_a_task_delivered_several_times_runs_once(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "once"})).json()["id"]
    redis = api_pg.app.state.redis.client
    # The same task delivered three times (a reconciler's re-enqueue, a replayed stream...),
    # two workers: the first claim holds a live lease, so the other deliveries are skipped.
    for _ in range(2):
        await redis.xadd(STREAMS["normal"], {"task_id": task_id})
    model = GatedModel()
    metrics = Metrics()
    settings = worker_settings(pg_stack)
    async with (
        running_worker(settings.model_copy(update={"pod_name": "w1"}), model, metrics) as w1,
        running_worker(settings.model_copy(update={"pod_name": "w2"}), model, metrics) as w2,
    ):
        await eventually(lambda: model.waiting == 1)
        await eventually(lambda: w1.processed + w2.processed == 2)  # the two duplicates
        model.release()
        await _until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: _no_pending(api_pg))
    assert [call[-1].content for call in model.calls] == ["once"]  # one run
    assert metrics.tasks.labels("normal", "succeeded")._value.get() == 1
    task = await _task(api_pg, task_id)
    assert task["result"] == "gated: once"
    assert task["attempts"] == 1


async def test_two_holders_of_one_task_complete_it_once(api_pg: Api) -> None:
    """A worker whose lease lapsed (stalled, cut off) may still finish after another took the
    task over: the conditional update records one outcome."""
    task_id = uuid.UUID(
        (await api_pg.client.post("/v1/tasks", json={"prompt": "twice"})).json()["id"]
    )
    repo = TaskRepository(api_pg.app.state.engine, lease_seconds=0.05)
    assert (await repo.claim(task_id, "slow")).attempts == 1
    assert await repo.claim(task_id, "eager") is None  # the lease is live
    await asyncio.sleep(0.1)
    assert (await repo.claim(task_id, "rescuer")).attempts == 2
    assert await repo.finish(task_id, "succeeded", result="from slow") is True
    assert await repo.finish(task_id, "succeeded", result="from rescuer") is False
    task = await _task(api_pg, str(task_id))
    assert (task["status"], task["result"], task["attempts"]) == ("succeeded", "from slow", 2)


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
    assert done["attempts"] == 1  # a task given back is not a failed attempt


async def test_a_task_that_keeps_failing_is_given_up(api_pg: Api, pg_stack: dict) -> None:
    task_id = (await api_pg.client.post("/v1/tasks", json={"prompt": "poison"})).json()["id"]
    repo = TaskRepository(api_pg.app.state.engine, lease_seconds=0.01)
    for _ in range(3):  # three workers died on it: each lease lapsed
        assert await repo.claim(uuid.UUID(task_id), "dead") is not None
        await asyncio.sleep(0.05)
    async with running_worker(worker_settings(pg_stack, task_max_attempts=3)):
        task = await _until_status(api_pg, task_id, "failed")
    assert task["error"] == "gave up after 3 attempts"
