"""`python -m agent_service.worker`: runs background tasks from Redis Streams.

Reads with a consumer group (high-priority stream first), completes each task exactly once in
the database (conditional UPDATE), and on SIGTERM gives unfinished tasks back to the queue.
Nothing is lost with Redis' data: the worker recreates the streams and the group when Redis
answers NOGROUP, holds a lease on each running task in PostgreSQL, and its reconciler
(core/reconciler.py) re-enqueues what PostgreSQL says nobody works on. Entries a dead worker
left pending are also taken over with XAUTOCLAIM after TASK_RECLAIM_IDLE_SECONDS.
Prometheus metrics (worker_metrics.py) are served on METRICS_PORT while the loop runs.

`LocalWorker` (local_worker.py) is the in-process equivalent the API runs without REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time

import redis.asyncio as redis
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import ConfigError, Settings, load_settings
from .core.cache import ResponseCache
from .core.logging import configure_logging
from .core.metrics import Metrics
from .core.models import ModelBackend, create_backend
from .core.queue import Entry, RedisTaskQueue, is_nogroup
from .core.reconciler import Reconciler
from .core.redis import REDIS_ERRORS, RedisGate, create_redis, describe
from .core.retention import build_purger, purging
from .core.tasks import TaskExecutor
from .heartbeat import Heartbeat
from .metrics_server import start_metrics_server
from .readiness import ConsumeState
from .storage.db import create_engine
from .storage.task_repository import TaskRepository
from .worker_metrics import WorkerMetrics

log = logging.getLogger(__name__)


class Worker:
    """The Redis Streams consumer loop, and beside it the upkeep loop (lease renewals and the
    reconciler), which needs only the database: a Redis outage never delays a renewal."""

    def __init__(
        self,
        queue: RedisTaskQueue,
        executor: TaskExecutor,
        *,
        consumer: str,
        concurrency: int,
        reclaim_idle_seconds: float,
        shutdown_grace_seconds: float,
        reconciler: Reconciler | None = None,
        reconcile_seconds: float = 15.0,
        block_ms: int = 500,
        heartbeat: Heartbeat | None = None,
        ready: ConsumeState | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self.consumer = consumer
        self._concurrency = concurrency
        self._reclaim_idle_ms = int(reclaim_idle_seconds * 1000)
        # Renew leases, check for dead workers' entries and refresh our own, a few times per
        # idle window.
        self._maintenance_every = min(reclaim_idle_seconds / 3, 5.0)
        self._reconciler = reconciler
        self._reconcile_every = reconcile_seconds
        self._grace = shutdown_grace_seconds
        self._block_ms = block_ms
        self._running: dict[asyncio.Task, Entry] = {}
        self._heartbeat = heartbeat or Heartbeat(None)
        self._ready = ready or ConsumeState(None)
        self.metrics = metrics or WorkerMetrics()
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then give back what is unfinished."""
        self._heartbeat.beat()
        self._ready.started()
        upkeep = asyncio.create_task(self._upkeep(stop))
        backlog: list[Entry] = []
        joined = started = False
        next_maintenance = 0.0
        try:
            while not stop.is_set():
                # Every pass beats, Redis up or down: liveness asks "is this loop turning?".
                self._heartbeat.beat()
                try:
                    if not joined:
                        await self._queue.ensure_group()
                        joined = True
                        if not started:
                            started = True
                            log.info("worker started", extra={"consumer": self.consumer})
                    free = self._concurrency - len(self._running)
                    # Also when every slot is busy: the entries of long tasks must stay ours.
                    if time.monotonic() >= next_maintenance:
                        next_maintenance = time.monotonic() + self._maintenance_every
                        await self._queue.heartbeat(self.consumer, list(self._running.values()))
                        if free > 0:
                            reclaimed = await self._queue.reclaim(
                                self.consumer, self._reclaim_idle_ms, free
                            )
                            self.metrics.reclaimed(len(reclaimed))
                            backlog += reclaimed
                        self._ready.consumed()
                    if free <= 0:
                        await asyncio.wait(
                            self._running, timeout=1, return_when=asyncio.FIRST_COMPLETED
                        )
                        continue
                    if not backlog:
                        backlog = await self._queue.read(self.consumer, free, self._block_ms)
                        self._ready.consumed()
                    self._start(backlog)
                except REDIS_ERRORS as exc:
                    self._ready.failed(describe(exc))
                    if is_nogroup(exc):
                        # Redis lost the streams or the group (a restart without persistence,
                        # a failover, an eviction): recreate them on the next pass.
                        log.warning(
                            "consumer group missing; recreating it", extra={"error": describe(exc)}
                        )
                        joined = False
                        await asyncio.sleep(0.1)
                        continue
                    log.warning("worker cannot consume; retrying", extra={"error": describe(exc)})
                    await asyncio.sleep(1)
        finally:
            upkeep.cancel()
            await asyncio.gather(upkeep, return_exceptions=True)
            await self._shutdown(backlog)

    def _start(self, backlog: list[Entry]) -> None:
        backlog.sort(key=lambda e: e.priority != "high")
        while backlog and len(self._running) < self._concurrency:
            entry = backlog.pop(0)
            task = asyncio.create_task(self._process(entry))
            self._running[task] = entry
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        entry = self._running.pop(task)
        # _process handles its errors; anything else is logged here, never left unretrieved.
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "task entry failed",
                exc_info=task.exception(),
                extra={"task_id": str(entry.task_id)},
            )

    async def _upkeep(self, stop: asyncio.Event) -> None:
        """Renew the leases of the tasks this worker runs; run the reconciler now and then
        (at a random offset, so workers started together do not run it together)."""
        tick = min(self._maintenance_every, self._reconcile_every)
        next_reconcile = time.monotonic() + random.uniform(0, self._reconcile_every)  # noqa: S311
        while not stop.is_set():
            held = [entry.task_id for entry in self._running.values()]
            try:
                await self._executor.repo.renew(held, self._executor.worker)
            except Exception as exc:
                log.warning("cannot renew task leases", extra={"error": describe(exc)})
            if self._reconciler is not None and time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + self._reconcile_every
                try:
                    await self._reconciler.run_once()
                except Exception as exc:
                    log.warning("reconciler pass failed", extra={"error": describe(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)

    async def _process(self, entry: Entry) -> None:
        try:
            outcome = await self._executor.run(entry.task_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left pending: reclaimed, or handed out again, once its lease lapses.
            log.exception("task run failed", extra={"task_id": str(entry.task_id)})
            return
        try:
            await self._queue.ack(entry)
        except REDIS_ERRORS as exc:
            # The task is finished in the database; its entry stays pending (if Redis kept
            # it), and whoever reclaims it finds nothing to claim and acknowledges it.
            log.warning(
                "could not acknowledge a finished task's entry",
                extra={"task_id": str(entry.task_id), "error": describe(exc)},
            )
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
            try:
                await self._executor.repo.requeue(entry.task_id, self._executor.worker)
            except Exception as exc:
                # Still running under our lease: handed out again once it lapses.
                log.warning("could not requeue a task", extra={"error": describe(exc)})
            try:
                await self._queue.give_back(entry)
            except REDIS_ERRORS as exc:
                # Queued in the database: the reconciler hands it out.
                log.warning("could not give a task back", extra={"error": describe(exc)})
        if unfinished or backlog:
            log.info("unfinished tasks given back", extra={"count": len(unfinished) + len(backlog)})


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
    worker_metrics: WorkerMetrics | None = None,
) -> Worker:
    """A worker over the given pools (the caller owns and closes them); `worker_metrics`
    count what it does (a fresh registry when not given)."""
    consumer = consumer_name(settings)
    worker_metrics = worker_metrics or WorkerMetrics()
    repo = TaskRepository(engine, lease_seconds=settings.task_reclaim_idle_seconds)
    queue = RedisTaskQueue(client)
    executor = TaskExecutor(
        repo,
        model,
        ResponseCache(settings.cache_ttl, metrics, RedisGate(client)),
        metrics,
        worker=consumer,
        agent_type=settings.agent_type,
        max_attempts=settings.task_max_attempts,
        observer=worker_metrics,
    )
    return Worker(
        queue,
        executor,
        consumer=consumer,
        concurrency=settings.worker_concurrency,
        reclaim_idle_seconds=settings.task_reclaim_idle_seconds,
        shutdown_grace_seconds=settings.shutdown_timeout_seconds,
        reconciler=Reconciler(repo, queue, settings.task_reclaim_idle_seconds),
        reconcile_seconds=settings.task_reconcile_seconds,
        block_ms=block_ms,
        heartbeat=Heartbeat(settings.worker_heartbeat_file),
        ready=ConsumeState(settings.worker_ready_file),
        metrics=worker_metrics,
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
    observed = WorkerMetrics()

    async def render() -> bytes:
        return await observed.render(client)

    server = None
    try:
        server = await start_metrics_server(settings.host, settings.metrics_port, render)
        worker = build_worker(
            settings, engine, client, model, Metrics(), block_ms=block_ms, worker_metrics=observed
        )
        # The retention job (core/retention.py) rides along with every worker.
        async with purging(build_purger(settings, engine)):
            await worker.run(stop)
    finally:
        if server is not None:
            await server.stop()
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


def main(argv: list[str] | tuple[str, ...] = ()) -> int:
    argparse.ArgumentParser(
        prog="python -m agent_service.worker",
        description="The background task worker (needs REDIS_URL), configured by environment "
        "variables (README: 'Environment'). SIGTERM gives unfinished tasks back.",
    ).parse_args(list(argv))
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

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(_main(settings))
    except ConfigError as exc:  # METRICS_PORT taken
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
