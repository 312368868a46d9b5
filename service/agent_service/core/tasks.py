"""Background tasks: the API side (submit, read, cancel) and the executor every worker runs.

A task runs its prompt through the configured model backend and stores the reply as its result.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Protocol

from sqlalchemy import Row

from ..storage.task_repository import TaskConflict, TaskRepository
from .cache import ResponseCache
from .errors import Conflict, NotFound
from .generate import generate, system_prompt
from .metrics import Metrics
from .models import ChatMessage, ModelBackend, ModelError
from .redis import REDIS_ERRORS, describe

log = logging.getLogger(__name__)


class TaskQueue(Protocol):
    async def enqueue(self, task_id: uuid.UUID, priority: str) -> None: ...


class TaskObserver(Protocol):
    """Told when an executor starts a task it claimed, and how that run ended: succeeded,
    failed, cancelled, or handed_back (no result from this run: given back at shutdown, an
    error storing it, or completed by another worker after this one's lease lapsed)."""

    def started(self, priority: str) -> None: ...

    def finished(self, priority: str, outcome: str, seconds: float) -> None: ...


class TaskService:
    def __init__(self, repo: TaskRepository, queue: TaskQueue, metrics: Metrics) -> None:
        self._repo = repo
        self._queue = queue
        self._metrics = metrics

    async def submit(
        self, owner: str, prompt: str, priority: str, idempotency_key: str | None
    ) -> Row:
        """Store and enqueue a task; the same Idempotency-Key returns the first task.

        Stored is accepted: when Redis cannot take the entry the task stays queued in the
        database and is handed out by a worker's reconciler once Redis answers again."""
        request_hash = hashlib.sha256(f"{priority}\0{prompt}".encode()).hexdigest()
        try:
            row, created = await self._repo.create(
                owner=owner,
                prompt=prompt,
                priority=priority,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
        except TaskConflict:
            raise Conflict(
                "this Idempotency-Key was used with a different request",
                code="idempotency_key_reused",
            ) from None
        if created:
            try:
                await self._queue.enqueue(row.id, priority)
            except REDIS_ERRORS as exc:
                # Accepted all the same: the row is the record, and the reconciler enqueues a
                # task nobody started (core/reconciler.py). Deleting it instead would answer
                # concurrent requests with this Idempotency-Key an id that no longer exists.
                log.warning(
                    "task stored but not enqueued; the reconciler will hand it out",
                    extra={"task_id": str(row.id), "error": describe(exc)},
                )
            self._metrics.tasks.labels(priority, "queued").inc()
        return row

    async def get(self, owner: str, task_id: uuid.UUID) -> Row:
        row = await self._repo.get(task_id, owner)
        if row is None:
            raise NotFound("task not found")
        return row

    async def cancel(self, owner: str, task_id: uuid.UUID) -> Row:
        row = await self._repo.cancel(task_id, owner)
        if row is None:
            existing = await self.get(owner, task_id)
            raise Conflict(f"task already {existing.status}", code="task_finished")
        self._metrics.tasks.labels(row.priority, "cancelled").inc()
        return row


class TaskExecutor:
    """Claim, run and complete one task; safe to call twice for the same task (reclaims)."""

    def __init__(
        self,
        repo: TaskRepository,
        model: ModelBackend,
        cache: ResponseCache,
        metrics: Metrics,
        worker: str,
        agent_type: str,
        max_attempts: int,
        observer: TaskObserver | None = None,
    ) -> None:
        self.repo = repo
        self._model = model
        self._cache = cache
        self._metrics = metrics
        self.worker = worker
        self._agent_type = agent_type
        self._max_attempts = max_attempts
        self._observer = observer

    async def run(self, task_id: uuid.UUID) -> str:
        """The outcome: succeeded, failed, or skipped (finished, cancelled or completed by
        another attempt). Database errors propagate so the queue entry is retried."""
        claimed = await self.repo.claim(task_id, self.worker)
        if claimed is None:
            return "skipped"
        if self._observer is None:
            return await self._run(claimed)
        self._observer.started(claimed.priority)
        began = time.monotonic()
        try:
            outcome = await self._run(claimed)
            observed = outcome if outcome != "skipped" else await self._refused(claimed.id)
        except BaseException:
            self._observer.finished(claimed.priority, "handed_back", time.monotonic() - began)
            raise
        self._observer.finished(claimed.priority, observed, time.monotonic() - began)
        return outcome

    async def _refused(self, task_id: uuid.UUID) -> str:
        """Why a claimed task's result was not stored: cancelled meanwhile, or handed out
        again and completed by another worker (this one's lease lapsed)."""
        try:
            row = await self.repo.get(task_id)
        except Exception:
            return "handed_back"
        return "cancelled" if row is not None and row.status == "cancelled" else "handed_back"

    async def _run(self, claimed: Row) -> str:
        if claimed.attempts > self._max_attempts:
            error = f"gave up after {self._max_attempts} attempts"
            return await self._finish(claimed, "failed", error=error)
        prompt = [system_prompt(self._agent_type), ChatMessage("user", claimed.prompt)]
        try:
            text, _ = await generate(self._model, self._cache, prompt)
        except ModelError as exc:
            return await self._finish(claimed, "failed", error=str(exc))
        return await self._finish(claimed, "succeeded", result=text)

    async def _finish(
        self, claimed: Row, status: str, result: str | None = None, error: str | None = None
    ) -> str:
        if not await self.repo.finish(claimed.id, status, result=result, error=error):
            log.info("task already completed or cancelled", extra={"task_id": str(claimed.id)})
            return "skipped"
        self._metrics.tasks.labels(claimed.priority, status).inc()
        log.info("task finished", extra={"task_id": str(claimed.id), "status": status})
        return status
