"""`python -m agent_service.worker`: runs background tasks from Redis Streams.

Reads with a consumer group (high-priority stream first), reclaims entries left pending by a
dead worker (XAUTOCLAIM after TASK_RECLAIM_IDLE_SECONDS), completes each task exactly once in the
database (conditional UPDATE), and on SIGTERM gives unfinished tasks back to the queue.

`LocalWorker` is the in-process equivalent the API runs when REDIS_URL is unset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
import uuid

import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import ConfigError, Settings, load_settings
from .core.cache import ResponseCache
from .core.logging import configure_logging
from .core.metrics import Metrics
from .core.models import ModelBackend, create_backend
from .core.queue import Entry, LocalTaskQueue, RedisTaskQueue
from .core.redis import REDIS_ERRORS, RedisGate, create_redis
from .core.retention import build_purger, purging
from .core.tasks import TaskExecutor
from .heartbeat import Heartbeat
from .storage.db import create_engine
from .storage.repositories import TaskRepository

log = logging.getLogger(__name__)


class Worker:
    """The Redis Streams consumer loop."""

    def __init__(
        self,
        queue: RedisTaskQueue,
        executor: TaskExecutor,
        *,
        consumer: str,
        concurrency: int,
        reclaim_idle_seconds: float,
        shutdown_grace_seconds: float,
        block_ms: int = 500,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self.consumer = consumer
        self._concurrency = concurrency
        self._reclaim_idle_ms = int(reclaim_idle_seconds * 1000)
        # Check for dead workers' entries, and refresh our own, a few times per idle window.
        self._maintenance_every = min(reclaim_idle_seconds / 3, 5.0)
        self._grace = shutdown_grace_seconds
        self._block_ms = block_ms
        self._running: dict[asyncio.Task, Entry] = {}
        self._heartbeat = heartbeat or Heartbeat(None)
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then give back what is unfinished."""
        self._heartbeat.beat()
        await self._queue.ensure_group()
        log.info("worker started", extra={"consumer": self.consumer})
        backlog: list[Entry] = []
        next_maintenance = 0.0
        try:
            while not stop.is_set():
                # Every pass beats, Redis up or down: liveness asks "is this loop turning?".
                self._heartbeat.beat()
                try:
                    free = self._concurrency - len(self._running)
                    if free <= 0:
                        await asyncio.wait(
                            self._running, timeout=1, return_when=asyncio.FIRST_COMPLETED
                        )
                        continue
                    if time.monotonic() >= next_maintenance:
                        next_maintenance = time.monotonic() + self._maintenance_every
                        await self._queue.heartbeat(self.consumer, list(self._running.values()))
                        backlog += await self._queue.reclaim(
                            self.consumer, self._reclaim_idle_ms, free
                        )
                    if not backlog:
                        backlog = await self._queue.read(self.consumer, free, self._block_ms)
                    backlog.sort(key=lambda e: e.priority != "high")
                    while backlog and len(self._running) < self._concurrency:
                        entry = backlog.pop(0)
                        task = asyncio.create_task(self._process(entry))
                        self._running[task] = entry
                        task.add_done_callback(self._running.pop)
                except REDIS_ERRORS as exc:
                    log.warning("redis unavailable; worker retrying", extra={"error": repr(exc)})
                    await asyncio.sleep(1)
        finally:
            await self._shutdown(backlog)

    async def _process(self, entry: Entry) -> None:
        try:
            outcome = await self._executor.run(entry.task_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left pending: reclaimed and retried after the idle timeout.
            log.exception("task run failed", extra={"task_id": str(entry.task_id)})
            return
        await self._queue.ack(entry)
        self.processed += 1
        log.debug("task entry done", extra={"task_id": str(entry.task_id), "outcome": outcome})

    async def _shutdown(self, backlog: list[Entry]) -> None:
        if self._running:
            await asyncio.wait(self._running, timeout=self._grace)
        unfinished = list(self._running.items())
        for task, _ in unfinished:
            task.cancel()
        await asyncio.gather(*(t for t, _ in unfinished), return_exceptions=True)
        for entry in [e for _, e in unfinished] + backlog:
            with contextlib.suppress(Exception):
                await self._executor.repo.requeue(entry.task_id, self._executor.worker)
            try:
                await self._queue.give_back(entry)
            except REDIS_ERRORS:
                log.warning("could not give a task back; it will be reclaimed")
        if unfinished or backlog:
            log.info("unfinished tasks given back", extra={"count": len(unfinished) + len(backlog)})


class LocalWorker:
    """Runs tasks inside the API process when there is no Redis (the embedded default)."""

    def __init__(
        self,
        queue: LocalTaskQueue,
        executor: TaskExecutor,
        concurrency: int,
        shutdown_grace_seconds: float,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self._concurrency = concurrency
        self._grace = shutdown_grace_seconds
        self._loops: list[asyncio.Task] = []
        self._reloader: asyncio.Task | None = None
        self._querying = False
        self._jobs: dict[asyncio.Task, uuid.UUID] = {}

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._loop()) for _ in range(self._concurrency)]
        self._reloader = asyncio.create_task(self._reload())

    async def _reload(self) -> None:
        """Tasks left queued or running by a previous process run again. In the background and
        retried: the API starts even while the database is unavailable."""
        while True:
            try:
                self._querying = True
                rows = await self._executor.repo.unfinished()
            except Exception as exc:
                self._querying = False
                log.warning("cannot reload unfinished tasks yet", extra={"error": repr(exc)})
                await asyncio.sleep(2)
                continue
            for row in rows:
                await self._queue.enqueue(row.id, row.priority)
            return

    def _done(self, job: asyncio.Task) -> None:
        task_id = self._jobs.pop(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("task run failed", exc_info=job.exception(), extra={"task_id": str(task_id)})

    async def _loop(self) -> None:
        while True:
            task_id = await self._queue.get()
            job = asyncio.create_task(self._executor.run(task_id))
            self._jobs[job] = task_id
            job.add_done_callback(self._done)
            # Shielded: stopping the loop must not cut a database call in half.
            await asyncio.wait([job])

    async def stop(self) -> None:
        """Take no new task, let running ones finish for the grace period, give back the rest."""
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._reloader is not None:
            if self._querying:  # let a query in progress finish rather than cut it off
                await asyncio.wait([self._reloader], timeout=self._grace)
            self._reloader.cancel()
            await asyncio.gather(self._reloader, return_exceptions=True)
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=self._grace)
        unfinished = dict(self._jobs)
        for job in unfinished:
            job.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for task_id in unfinished.values():
            with contextlib.suppress(Exception):
                await self._executor.repo.requeue(task_id, self._executor.worker)


def consumer_name(settings: Settings) -> str:
    return f"{settings.pod_name}-{os.getpid()}"


def build_worker(
    settings: Settings,
    engine: AsyncEngine,
    client: redis.Redis,
    model: ModelBackend,
    metrics: Metrics,
    *,
    block_ms: int = 500,
) -> Worker:
    """A worker over the given pools (the caller owns and closes them)."""
    consumer = consumer_name(settings)
    executor = TaskExecutor(
        TaskRepository(engine),
        model,
        ResponseCache(settings.cache_ttl, metrics, RedisGate(client)),
        metrics,
        worker=consumer,
        agent_type=settings.agent_type,
        max_attempts=settings.task_max_attempts,
    )
    return Worker(
        RedisTaskQueue(client),
        executor,
        consumer=consumer,
        concurrency=settings.worker_concurrency,
        reclaim_idle_seconds=settings.task_reclaim_idle_seconds,
        shutdown_grace_seconds=settings.shutdown_timeout_seconds,
        block_ms=block_ms,
        heartbeat=Heartbeat(settings.worker_heartbeat_file),
    )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Open the worker's pools, run it until `stop`, close the pools last."""
    assert settings.redis_url is not None
    block_ms = 500
    engine = create_engine(settings)
    # The blocking XREADGROUP must fit inside the socket timeout.
    client = create_redis(
        settings.redis_url,
        timeout=settings.redis_timeout + block_ms / 1000,
        max_connections=settings.redis_max_connections,
    )
    model = create_backend(settings)
    try:
        worker = build_worker(settings, engine, client, model, Metrics(), block_ms=block_ms)
        # The retention job (core/retention.py) rides along with every worker.
        async with purging(build_purger(settings, engine)):
            await worker.run(stop)
    finally:
        await model.aclose()
        await client.aclose()
        await engine.dispose()


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop)
    log.info("worker stopped")


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.redis_url is None:
        print(
            "invalid environment: REDIS_URL: required by the worker "
            "(without Redis the API runs tasks in-process)",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level)
    try:
        import uvloop

        uvloop.run(_main(settings))
    except ImportError:
        asyncio.run(_main(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
