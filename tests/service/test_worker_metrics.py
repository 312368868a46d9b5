"""The worker's metrics, in-process against real Redis and PostgreSQL: each outcome of a run
(succeeded, failed, cancelled, handed_back), the running gauge, reclaims, duplicates not
counted as starts, and the registry rendered even when Redis cannot be measured."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from agent_service.core.models import ChatMessage, ModelBackend, ModelError
from agent_service.core.queue import GROUP, STREAMS
from agent_service.core.redis import create_redis
from agent_service.storage.task_repository import TaskRepository
from agent_service.worker import Worker
from agent_service.worker_metrics import WorkerMetrics
from prometheus_client import generate_latest

from bench.polling import eventually
from bench.stack import free_port

from .conftest import Api
from .fakes import GatedModel
from .scrape import value
from .workers import no_pending, running_worker, until_status, worker_settings

OUTCOMES = ("succeeded", "failed", "cancelled", "handed_back")


class BrokenModel(ModelBackend):
    name = "broken"
    model = "broken-1"

    async def complete(self, messages: list[ChatMessage]) -> str:
        raise ModelError("model answered HTTP 500")

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        raise ModelError("model answered HTTP 500")
        yield ""


def text(worker: Worker) -> str:
    return generate_latest(worker.metrics.registry).decode()


def finished(worker: Worker, priority: str = "normal") -> dict[str, float | None]:
    body = text(worker)
    name = "agent_worker_tasks_finished_total"
    return {o: value(body, name, priority=priority, outcome=o) for o in OUTCOMES}


async def _submit(api: Api, prompt: str, priority: str = "normal") -> str:
    body = {"prompt": prompt, "priority": priority}
    return (await api.client.post("/v1/tasks", json=body)).json()["id"]


async def test_succeeded_runs_are_counted_per_priority(api_pg: Api, pg_stack: dict) -> None:
    ids = [await _submit(api_pg, "n1"), await _submit(api_pg, "h1", "high")]
    ids.append(await _submit(api_pg, "n2"))
    async with running_worker(worker_settings(pg_stack)) as worker:
        for task_id in ids:
            await until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: worker.processed == 3)
        body = text(worker)
    assert value(body, "agent_worker_tasks_started_total", priority="normal") == 2
    assert value(body, "agent_worker_tasks_started_total", priority="high") == 1
    assert finished(worker) == {"succeeded": 2, "failed": 0, "cancelled": 0, "handed_back": 0}
    assert finished(worker, "high")["succeeded"] == 1
    assert value(body, "agent_worker_task_duration_seconds_count", priority="normal") == 2
    assert value(body, "agent_worker_task_duration_seconds_count", priority="high") == 1
    assert value(body, "agent_worker_tasks_running") == 0
    assert value(body, "agent_worker_reclaims_total") == 0


async def test_a_model_failure_is_a_failed_run(api_pg: Api, pg_stack: dict) -> None:
    task_id = await _submit(api_pg, "doomed")
    async with running_worker(worker_settings(pg_stack), BrokenModel()) as worker:
        await until_status(api_pg, task_id, "failed")
        await eventually(lambda: worker.processed == 1)
    assert finished(worker) == {"succeeded": 0, "failed": 1, "cancelled": 0, "handed_back": 0}


async def test_running_tasks_are_gauged_and_a_cancel_is_its_own_outcome(
    api_pg: Api, pg_stack: dict
) -> None:
    task_id = await _submit(api_pg, "slow")
    model = GatedModel()
    async with running_worker(worker_settings(pg_stack), model) as worker:
        await eventually(lambda: model.waiting == 1)
        assert value(text(worker), "agent_worker_tasks_running") == 1
        await api_pg.client.post(f"/v1/tasks/{task_id}/cancel")
        model.release()
        await eventually(lambda: worker.processed == 1)
        assert value(text(worker), "agent_worker_tasks_running") == 0
    assert finished(worker) == {"succeeded": 0, "failed": 0, "cancelled": 1, "handed_back": 0}


async def test_a_task_given_back_at_shutdown_is_handed_back(api_pg: Api, pg_stack: dict) -> None:
    task_id = await _submit(api_pg, "interrupted")
    model = GatedModel()  # never released
    settings = worker_settings(pg_stack, shutdown_timeout_seconds=0.1)
    async with running_worker(settings, model) as worker:
        await until_status(api_pg, task_id, "running")
    assert finished(worker) == {"succeeded": 0, "failed": 0, "cancelled": 0, "handed_back": 1}
    body = text(worker)
    assert value(body, "agent_worker_tasks_started_total", priority="normal") == 1
    assert value(body, "agent_worker_tasks_running") == 0


async def test_a_dead_consumers_entry_taken_over_is_a_reclaim(api_pg: Api, pg_stack: dict) -> None:
    task_id = await _submit(api_pg, "orphan")
    redis = api_pg.app.state.redis.client
    await redis.xgroup_create(STREAMS["normal"], GROUP, id="0", mkstream=True)
    await redis.xreadgroup(GROUP, "dead-consumer", {STREAMS["normal"]: ">"}, count=1)
    repo = TaskRepository(api_pg.app.state.engine, lease_seconds=0.3)
    await repo.claim(uuid.UUID(task_id), "dead-consumer")
    async with running_worker(worker_settings(pg_stack, task_reclaim_idle_seconds=0.3)) as worker:
        await until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: no_pending(api_pg))
    body = text(worker)
    assert value(body, "agent_worker_reclaims_total") == 1
    assert finished(worker)["succeeded"] == 1


async def test_duplicate_deliveries_are_not_starts(api_pg: Api, pg_stack: dict) -> None:
    task_id = await _submit(api_pg, "once")
    redis = api_pg.app.state.redis.client
    for _ in range(2):
        await redis.xadd(STREAMS["normal"], {"task_id": task_id})
    async with running_worker(worker_settings(pg_stack)) as worker:
        await until_status(api_pg, task_id, "succeeded")
        await eventually(lambda: worker.processed == 3)
    assert value(text(worker), "agent_worker_tasks_started_total", priority="normal") == 1
    assert finished(worker)["succeeded"] == 1


async def test_the_registry_renders_when_redis_cannot_be_measured() -> None:
    metrics = WorkerMetrics()
    metrics.started("high")
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, max_connections=2)
    try:
        body = (await metrics.render(client)).decode()
    finally:
        await client.aclose()
    assert value(body, "agent_worker_tasks_running") == 1
    assert value(body, "agent_worker_tasks_started_total", priority="high") == 1
    assert "# TYPE agent_queue_depth gauge" in body
    assert value(body, "agent_queue_depth", priority="high") is None  # unknown, not 0
