"""The task service and executor as a worker and the API use them: a task stored but not
enqueued is kept (never deleted), cancels stay per key, each run's outcome is reported as it
happened, and the embedded queue serves high priority first."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from agent_service.core.cache import ResponseCache
from agent_service.core.errors import Conflict, NotFound
from agent_service.core.metrics import Metrics
from agent_service.core.models.base import ChatMessage, ModelError
from agent_service.core.models.local import LocalBackend
from agent_service.core.queue import LocalTaskQueue
from agent_service.core.tasks import TaskExecutor, TaskService
from agent_service.storage.task_repository import TaskRepository
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .scrape import value

OWNER, OTHER = "owner-a", "owner-b"


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(pg_url)
    yield engine
    await engine.dispose()


class DownQueue:
    """A queue whose Redis is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    async def enqueue(self, task_id: uuid.UUID, priority: str) -> None:
        self.calls += 1
        raise RedisConnectionError("Connection refused")


def tasks_total(metrics: Metrics, priority: str, status: str) -> float | None:
    body = metrics.render().decode()
    return value(body, "agent_tasks_total", priority=priority, status=status)


async def test_a_task_redis_cannot_take_is_kept_queued_and_found_again(
    engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_service.core.tasks")
    repo, queue, metrics = TaskRepository(engine, 30), DownQueue(), Metrics()
    service = TaskService(repo, queue, metrics)
    first = await service.submit(OWNER, "p", "high", "key-1")
    assert queue.calls == 1
    [record] = caplog.records
    assert record.getMessage() == "task stored but not enqueued; the reconciler will hand it out"
    assert (record.task_id, record.error) == (str(first.id), "ConnectionError: Connection refused")
    stored = await service.get(OWNER, first.id)
    assert (stored.status, stored.priority, stored.prompt) == ("queued", "high", "p")
    # The same key maps to the same task, which still exists; no second enqueue is tried.
    again = await service.submit(OWNER, "p", "high", "key-1")
    assert again.id == first.id and queue.calls == 1
    assert (await service.get(OWNER, first.id)).status == "queued"
    assert tasks_total(metrics, "high", "queued") == 1
    with pytest.raises(Conflict) as reused:
        await service.submit(OWNER, "other prompt", "high", "key-1")
    assert reused.value.code == "idempotency_key_reused"
    assert reused.value.message == "this Idempotency-Key was used with a different request"


async def test_another_keys_cancel_is_404_and_leaves_the_task(engine) -> None:
    metrics = Metrics()
    service = TaskService(TaskRepository(engine, 30), LocalTaskQueue(), metrics)
    task = await service.submit(OWNER, "p", "high", None)
    with pytest.raises(NotFound) as unknown:
        await service.cancel(OTHER, task.id)
    assert (unknown.value.status, unknown.value.message) == (404, "task not found")
    assert (await service.get(OWNER, task.id)).status == "queued"
    assert tasks_total(metrics, "high", "cancelled") is None
    assert (await service.cancel(OWNER, task.id)).status == "cancelled"
    assert tasks_total(metrics, "high", "cancelled") == 1
    with pytest.raises(Conflict) as finished:
        await service.cancel(OWNER, task.id)
    assert (finished.value.code, finished.value.message) == (
        "task_finished",
        "task already cancelled",
    )
    with pytest.raises(NotFound):
        await service.cancel(OTHER, task.id)


class Observer:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, priority: str) -> None:
        self.events.append(("started", priority))

    def finished(self, priority: str, outcome: str, seconds: float) -> None:
        assert 0 <= seconds < 5  # how long this run took
        self.events.append(("finished", priority, outcome))


class Interfering(LocalBackend):
    """A model during whose call something else happens to the task."""

    def __init__(self, during) -> None:
        super().__init__("local-echo-1")
        self.during = during

    async def complete(self, messages: list[ChatMessage]) -> str:
        await self.during()
        return await super().complete(messages)


async def _run(
    engine, during, priority: str = "normal", observer: Observer | None = None
) -> tuple[str, list, dict, Metrics]:
    repo, metrics, observer = TaskRepository(engine, 30), Metrics(), observer or Observer()
    service = TaskService(repo, LocalTaskQueue(), metrics)
    task = await service.submit(OWNER, "p", priority, None)

    async def interfere() -> None:
        await during(repo, task.id)

    executor = TaskExecutor(
        repo,
        Interfering(interfere),
        ResponseCache(0, metrics),
        metrics,
        "worker-1",
        "general",
        max_attempts=3,
        observer=observer,
    )
    outcome = await executor.run(task.id)
    row = await TaskRepository(engine, 30).get(task.id)
    return outcome, observer.events, dict(row._mapping), metrics


def _task_log(caplog: pytest.LogCaptureFixture) -> list[tuple]:
    return [
        (r.levelname, r.getMessage(), r.task_id, getattr(r, "status", None))
        for r in caplog.records
        if r.name == "agent_service.core.tasks"
    ]


async def test_a_run_reports_success(engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent_service.core.tasks")

    async def nothing(repo, task_id) -> None:
        return None

    outcome, events, row, metrics = await _run(engine, nothing, "high")
    assert _task_log(caplog) == [("INFO", "task finished", str(row["id"]), "succeeded")]
    assert outcome == "succeeded"
    assert events == [("started", "high"), ("finished", "high", "succeeded")]
    assert row["status"] == "succeeded" and row["attempts"] == 1
    assert row["worker"] == "worker-1"  # who ran it
    assert tasks_total(metrics, "high", "succeeded") == 1


async def test_a_task_cancelled_while_it_ran_is_reported_cancelled(
    engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_service.core.tasks")

    async def cancel(repo, task_id) -> None:
        assert await repo.cancel(task_id, OWNER) is not None

    outcome, events, row, metrics = await _run(engine, cancel)
    assert _task_log(caplog) == [
        ("INFO", "task already completed or cancelled", str(row["id"]), None)
    ]
    assert outcome == "skipped"
    assert events == [("started", "normal"), ("finished", "normal", "cancelled")]
    assert row["status"] == "cancelled" and row["result"] is None
    assert tasks_total(metrics, "normal", "succeeded") is None


async def test_a_task_another_worker_completed_is_reported_handed_back(engine) -> None:
    async def completed_elsewhere(repo, task_id) -> None:
        assert await repo.finish(task_id, "succeeded", result="theirs")

    outcome, events, row, _ = await _run(engine, completed_elsewhere)
    assert outcome == "skipped"
    assert events == [("started", "normal"), ("finished", "normal", "handed_back")]
    assert row["result"] == "theirs"


async def test_a_run_interrupted_is_reported_handed_back(engine) -> None:
    async def shutdown(repo, task_id) -> None:
        raise KeyboardInterrupt

    observer = Observer()
    with pytest.raises(KeyboardInterrupt):
        await _run(engine, shutdown, "high", observer)
    assert observer.events == [("started", "high"), ("finished", "high", "handed_back")]


async def test_the_executor_runs_a_claimed_task_once(engine) -> None:
    repo, metrics = TaskRepository(engine, 30), Metrics()
    task = await TaskService(repo, LocalTaskQueue(), metrics).submit(OWNER, "p", "normal", None)
    executor = TaskExecutor(
        repo, LocalBackend("local-echo-1"), ResponseCache(0, metrics), metrics, "w", "general", 3
    )
    assert await executor.run(task.id) == "succeeded"
    assert await executor.run(task.id) == "skipped"
    row = await repo.get(task.id)
    assert row.attempts == 1
    assert row.result == (
        "Turn 1: you said 'p' (1 word). I can see 0 earlier messages in this session."
    )


async def test_the_embedded_queue_serves_high_priority_first_then_in_order() -> None:
    queue = LocalTaskQueue()
    ids = [uuid.uuid4() for _ in range(4)]
    await queue.enqueue(ids[0], "normal")
    await queue.enqueue(ids[1], "high")
    await queue.enqueue(ids[2], "normal")
    await queue.enqueue(ids[3], "high")
    assert [await queue.get() for _ in ids] == [ids[1], ids[3], ids[0], ids[2]]


async def test_a_refused_result_whose_task_cannot_be_read_is_reported_handed_back(engine) -> None:
    async def completed_then_database_gone(repo, task_id) -> None:
        assert await repo.finish(task_id, "succeeded", result="theirs")

        async def unreachable(*args: object) -> None:
            raise ConnectionRefusedError("database down")

        repo.get = unreachable

    outcome, events, _, _ = await _run(engine, completed_then_database_gone)
    assert outcome == "skipped"
    assert events == [("started", "normal"), ("finished", "normal", "handed_back")]


async def test_the_last_allowed_attempt_runs_and_the_next_gives_up(engine) -> None:
    repo, metrics = TaskRepository(engine, 0.05), Metrics()
    service = TaskService(repo, LocalTaskQueue(), metrics)

    def executor(worker: str) -> TaskExecutor:
        cache = ResponseCache(0, metrics)
        return TaskExecutor(repo, LocalBackend("local-echo-1"), cache, metrics, worker, "a", 1)

    task = await service.submit(OWNER, "p", "normal", None)
    assert await executor("w1").run(task.id) == "succeeded"  # attempt 1 of 1
    task = await service.submit(OWNER, "q", "high", None)
    assert await repo.claim(task.id, "dead-worker") is not None  # attempt 1, then it died
    await asyncio.sleep(0.15)  # its lease lapses
    assert await executor("w2").run(task.id) == "failed"
    row = await repo.get(task.id)
    assert (row.status, row.attempts, row.error) == ("failed", 2, "gave up after 1 attempts")
    assert tasks_total(metrics, "high", "failed") == 1


class FailingModel(LocalBackend):
    def __init__(self) -> None:
        super().__init__("local-echo-1")
        self.prompts: list[list[ChatMessage]] = []

    async def complete(self, messages: list[ChatMessage]) -> str:
        self.prompts.append(messages)
        raise ModelError("the model timed out after 30 s")


async def test_a_model_failure_fails_the_task_with_its_message(engine) -> None:
    repo, metrics, model = TaskRepository(engine, 30), Metrics(), FailingModel()
    task = await TaskService(repo, LocalTaskQueue(), metrics).submit(OWNER, "p", "high", None)
    executor = TaskExecutor(repo, model, ResponseCache(0, metrics), metrics, "w", "research", 3)
    assert await executor.run(task.id) == "failed"
    row = await repo.get(task.id)
    assert (row.status, row.error, row.result) == ("failed", "the model timed out after 30 s", None)
    assert tasks_total(metrics, "high", "failed") == 1
    [prompt] = model.prompts
    assert [(m.role, m.content) for m in prompt] == [
        ("system", "You are a helpful research agent."),
        ("user", "p"),
    ]
