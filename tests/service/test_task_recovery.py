"""Tasks survive what Redis can lose, against real PostgreSQL and Redis: the streams and the group
(FLUSHDB on this run's Redis DB index is Redis restarted empty), a lost queue entry, a dead
worker's lost pending entry, an acknowledgement cut by an outage; graceful give-backs are not
failed attempts; several reconcilers at once hand each task out once. At the end, the
reconciler's decisions with a recording repository and queue: which queued tasks count as lost
per priority, and how a pass goes on in batches."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from agent_service.core.queue import STREAMS, Position, RedisTaskQueue
from agent_service.core.reconciler import Reconciler
from agent_service.storage.task_repository import TaskRepository

from bench.polling import eventually

from .conftest import Api
from .fakes import GatedModel, TcpProxy
from .workers import no_pending, running_worker, task, until_status, worker_settings

# Small idle and reconcile periods, so a recovery takes seconds.
FAST = {"task_reclaim_idle_seconds": 1, "task_reconcile_seconds": 0.3}


async def _submit(api: Api, prompt: str, **body: str) -> str:
    response = await api.client.post("/v1/tasks", json={"prompt": prompt, **body})
    assert response.status_code == 202
    return response.json()["id"]


async def _entries(api: Api) -> list[str]:
    """Task ids of every entry in both streams."""
    client = api.app.state.redis.client
    return [
        fields[b"task_id"].decode()
        for stream in STREAMS.values()
        for _, fields in await client.xrange(stream)
    ]


async def test_a_worker_recreates_the_group_redis_lost_and_runs_new_tasks(
    api_pg: Api, pg_stack: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agent_service.worker")
    async with running_worker(worker_settings(pg_stack)) as worker:
        first = await _submit(api_pg, "before")
        await until_status(api_pg, first, "succeeded")
        await api_pg.app.state.redis.client.flushdb()  # Redis restarted empty
        second = await _submit(api_pg, "after")  # the API's XADD makes a stream, no group
        done = await until_status(api_pg, second, "succeeded", timeout=20)
        await eventually(lambda: worker.processed == 2)
    assert done["attempts"] == 1
    missing = [
        r for r in caplog.records if r.getMessage() == "consumer group missing; recreating it"
    ]
    assert missing, caplog.text
    # The log says what Redis said, not the exception's bare class name.
    assert missing[0].error.startswith("ResponseError: NOGROUP No such key"), missing[0].error


async def test_the_recreated_group_delivers_entries_added_after_the_loss(api_pg: Api) -> None:
    redis = api_pg.app.state.redis.client
    queue = RedisTaskQueue(redis)
    await queue.ensure_group()
    await redis.flushdb()
    lost_then_added = await _submit(api_pg, "between the loss and the new group")
    await queue.ensure_group()  # what a worker does on NOGROUP
    await queue.ensure_group()  # and again (another worker): harmless
    delivered = await queue.read("w", count=10, block_ms=100)
    assert [str(e.task_id) for e in delivered] == [lost_then_added]


async def test_tasks_whose_entries_redis_lost_are_handed_out_again(
    api_pg: Api, pg_stack: dict
) -> None:
    ids = [await _submit(api_pg, f"lost {i}", priority=("high", "normal")[i % 2]) for i in range(4)]
    await api_pg.app.state.redis.client.flushdb()  # no worker had read them
    async with running_worker(worker_settings(pg_stack, **FAST)):
        done = [await until_status(api_pg, i, "succeeded", timeout=20) for i in ids]
        await eventually(lambda: no_pending(api_pg))
    assert [t["attempts"] for t in done] == [1, 1, 1, 1]
    assert done[2]["result"].startswith("Turn 1: you said 'lost 2'")


async def test_a_dead_workers_task_whose_entry_redis_lost_completes(
    api_pg: Api, pg_stack: dict
) -> None:
    task_id = await _submit(api_pg, "orphaned twice")
    repo = TaskRepository(api_pg.app.state.engine, lease_seconds=1)
    assert (await repo.claim(uuid.UUID(task_id), "dead-worker")).attempts == 1
    await api_pg.app.state.redis.client.flushdb()  # its pending entry is gone with Redis
    async with running_worker(worker_settings(pg_stack, **FAST)):
        done = await until_status(api_pg, task_id, "succeeded", timeout=20)
    assert done["attempts"] == 2  # the dead worker's attempt counts: it failed


async def test_a_backlog_waiting_in_redis_is_left_alone(api_pg: Api) -> None:
    redis = api_pg.app.state.redis.client
    queue = RedisTaskQueue(redis)
    await queue.ensure_group()
    ids = [await _submit(api_pg, f"waiting {i}") for i in range(3)]
    reconciler = Reconciler(TaskRepository(api_pg.app.state.engine, 1), queue, 1)
    await asyncio.sleep(1.2)  # overdue, but their entries wait undelivered: not duplicated
    assert await reconciler.run_once() == 0
    assert await _entries(api_pg) == ids
    # Delivered and acknowledged without running (an entry a failover lost, say): the group
    # has nothing left to deliver, so they are handed out again, once.
    delivered = await queue.read("w", count=10, block_ms=100)
    for entry in delivered:
        await queue.ack(entry)
    assert await reconciler.run_once() == 3
    assert await reconciler.run_once() == 0
    assert sorted(await _entries(api_pg)) == sorted(ids * 2)


async def test_concurrent_reconcilers_hand_each_task_out_once(api_pg: Api) -> None:
    ids = {await _submit(api_pg, f"t{i}", priority=("high", "normal")[i % 2]) for i in range(80)}
    redis = api_pg.app.state.redis.client
    await redis.flushdb()
    await asyncio.sleep(2.2)  # overdue
    reconcilers = [
        Reconciler(TaskRepository(api_pg.app.state.engine, 2), RedisTaskQueue(redis), 2, 7)
        for _ in range(10)
    ]
    counts = await asyncio.gather(*(r.run_once() for r in reconcilers))
    assert sum(counts) == 80, counts
    entries = await _entries(api_pg)
    assert sorted(entries) == sorted(ids)  # each exactly once
    assert await reconcilers[0].run_once() == 0  # handed out as of now: not again at once


async def test_a_task_given_back_at_each_rollout_is_not_failed(api_pg: Api, pg_stack: dict) -> None:
    task_id = await _submit(api_pg, "long and healthy")
    settings = worker_settings(pg_stack, task_max_attempts=3, shutdown_timeout_seconds=0.1)
    for rollout in range(3):  # SIGTERM while it runs, three times: it is given back each time
        old = settings.model_copy(update={"pod_name": f"old{rollout}"})
        async with running_worker(old, GatedModel()):  # the model never answers in time
            await until_status(api_pg, task_id, "running")
        assert (await task(api_pg, task_id))["status"] == "queued"
    async with running_worker(settings):
        done = await until_status(api_pg, task_id, "succeeded", "failed")
    assert (done["status"], done["attempts"], done["error"]) == ("succeeded", 1, None)


async def test_an_acknowledgement_lost_to_a_redis_outage_is_handled(
    api_pg: Api, pg_stack: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agent_service.worker")
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    target = urlsplit(str(pg_stack["redis_url"]))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    via_proxy = f"redis://127.0.0.1:{proxy.port}{target.path}"
    model = GatedModel()
    task_id = await _submit(api_pg, "finish me in the dark")
    try:
        settings = worker_settings(pg_stack, redis_url=via_proxy, **FAST)
        async with running_worker(settings, model) as worker:
            await eventually(lambda: model.waiting == 1)
            await proxy.cut()  # Redis goes away while the model works
            model.release()
            await until_status(api_pg, task_id, "succeeded")

            def acknowledgement_failed() -> list[logging.LogRecord]:
                gc.collect()  # a task object with an unretrieved exception reports it when freed
                if unhandled:
                    raise AssertionError([c["message"] for c in unhandled])
                return [r for r in caplog.records if r.getMessage().startswith("could not ack")]

            lost = await eventually(acknowledgement_failed)
            assert len(lost) == 1, caplog.text
            assert lost[0].error.startswith("ConnectionError: "), lost[0].error
            await eventually(lambda: worker.processed == 1)
            await proxy.start()  # back: the entry, still pending, is reclaimed and skipped
            await eventually(lambda: no_pending(api_pg), timeout=20)
    finally:
        loop.set_exception_handler(None)
        await proxy.cut()
    assert unhandled == []
    done = await task(api_pg, task_id)
    assert (done["status"], done["attempts"], done["result"]) == (
        "succeeded",
        1,
        "gated: finish me in the dark",
    )


# --- the reconciler's decisions ------------------------------------------------------------

IDLE = 30


class RecordingRepo:
    def __init__(self, batches: list[int]) -> None:
        self.batches = batches
        self.calls: list[tuple[dict, int, datetime]] = []

    async def hand_out_again(self, queued_before: dict, limit: int, now: datetime) -> list:
        self.calls.append((queued_before, limit, now))
        size = self.batches.pop(0) if self.batches else 0
        return [SimpleNamespace(id=uuid.uuid4(), priority="normal") for _ in range(size)]


class RecordingQueue:
    def __init__(self, positions: dict) -> None:
        self._positions = positions
        self.enqueued: list[list] = []

    async def positions(self) -> dict:
        return self._positions

    async def enqueue_many(self, tasks) -> None:
        self.enqueued.append(list(tasks))


async def _bounds(positions: dict) -> tuple[dict, datetime]:
    repo = RecordingRepo([0])
    before = datetime.now(UTC)
    assert await Reconciler(repo, RecordingQueue(positions), IDLE).run_once() == 0
    [(queued_before, limit, now)] = repo.calls
    assert before <= now <= datetime.now(UTC)
    assert limit == 500
    return queued_before, now


async def test_without_a_stream_or_anything_waiting_the_idle_bound_alone_counts() -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    queued_before, now = await _bounds({"high": None, "normal": Position(long_ago, 0)})
    assert queued_before == {
        "high": now - timedelta(seconds=IDLE),
        "normal": now - timedelta(seconds=IDLE),
    }
    queued_before, now = await _bounds({"normal": Position(long_ago, None)})
    assert queued_before["normal"] == now - timedelta(seconds=IDLE)
    assert queued_before["high"] == now - timedelta(seconds=IDLE)  # no position: lost


async def test_with_entries_waiting_only_tasks_queued_before_the_read_position_count() -> None:
    now = datetime.now(UTC)
    read_to = now - timedelta(seconds=100)
    queued_before, now = await _bounds({"high": Position(read_to, 3), "normal": None})
    # One second of room for the clocks of Redis and the API pod.
    assert queued_before["high"] == read_to - timedelta(seconds=1)
    # A group that read recently: the idle bound is the earlier one.
    recent = now - timedelta(seconds=5)
    queued_before, now = await _bounds({"high": Position(recent, 3), "normal": None})
    assert queued_before["high"] == now - timedelta(seconds=IDLE)


@pytest.mark.parametrize(
    ("batches", "calls"), [([2, 2, 1], 3), ([2, 2, 0], 3), ([1], 1), ([25], 2)]
)
async def test_a_pass_goes_on_until_a_batch_comes_back_short(
    batches: list[int], calls: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_service.core.reconciler")
    repo, queue = RecordingRepo(list(batches)), RecordingQueue({"high": None, "normal": None})
    assert await Reconciler(repo, queue, IDLE, batch=2).run_once() == sum(batches)
    assert len(repo.calls) == calls
    assert {limit for _, limit, _ in repo.calls} == {2}
    assert [len(b) for b in queue.enqueued] == [n for n in batches if n]
    assert all(isinstance(t, uuid.UUID) and p == "normal" for b in queue.enqueued for t, p in b)
    assert [(r.getMessage(), r.count) for r in caplog.records] == [
        ("tasks handed out again", n) for n in batches if n
    ]
    first = caplog.records[0]
    assert first.task_ids == [str(t) for t, _ in queue.enqueued[0]][:20]  # at most 20 a line
    assert len(first.task_ids) == min(batches[0], 20)
