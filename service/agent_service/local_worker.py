"""The in-process task worker of the embedded default (no REDIS_URL): the API runs it.

Tasks go through an in-process priority queue; on start it reloads what the previous process
left queued or running, and on shutdown it gives unfinished tasks back to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from .core.queue import LocalTaskQueue
from .core.redis import describe
from .core.tasks import TaskExecutor

log = logging.getLogger(__name__)


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
                # This is the only process of the embedded default: a task still `running` was
                # cut off when the previous one stopped, and is nobody's now.
                await self._executor.repo.requeue_running()
                rows = await self._executor.repo.unfinished()
            except Exception as exc:
                self._querying = False
                log.warning("cannot reload unfinished tasks yet", extra={"error": describe(exc)})
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
