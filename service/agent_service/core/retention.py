"""The retention job: ended sessions and their messages are deleted SESSION_RETENTION_SECONDS
after they ended, every SESSION_PURGE_INTERVAL_SECONDS, in bounded batches.

It runs in every worker process (and in the API when it runs tasks itself, without Redis);
the statements skip rows another worker is deleting (storage/retention.py), so any number of
workers share the work without coordination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import Settings
from ..storage.repositories import utcnow
from ..storage.retention import RetentionRepository

log = logging.getLogger(__name__)


class SessionPurger:
    def __init__(
        self,
        repo: RetentionRepository,
        retention_seconds: float,
        interval_seconds: float,
        *,
        batch: int = 1000,
        max_batches: int = 100,
    ) -> None:
        self._repo = repo
        self._retention = timedelta(seconds=retention_seconds)
        self._interval = interval_seconds
        self._batch = batch
        self._max_batches = max_batches

    async def run_once(self) -> tuple[int, int]:
        """Purge what expired, batch by batch (at most `max_batches` this time; the rest
        waits for the next run). Returns (messages, sessions) deleted."""
        cutoff = utcnow() - self._retention
        total_messages = total_sessions = 0
        for _ in range(self._max_batches):
            purged_messages, purged_sessions = await self._repo.purge_ended(cutoff, self._batch)
            total_messages += purged_messages
            total_sessions += purged_sessions
            if purged_messages < self._batch and purged_sessions < self._batch:
                break
        if total_sessions or total_messages:
            log.info(
                "ended sessions purged",
                extra={"sessions": total_sessions, "messages": total_messages},
            )
        return total_messages, total_sessions

    async def run(self) -> None:
        """Forever: a run now, then one every interval (with jitter, so workers started
        together spread out). A failed run (database down) is logged and retried."""
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("session purge failed; retrying later", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval * random.uniform(0.9, 1.1))  # noqa: S311


@contextlib.asynccontextmanager
async def purging(purger: SessionPurger | None) -> AsyncIterator[None]:
    """Run `purger` in the background for the duration of the block (None: nothing)."""
    if purger is None:
        yield
        return
    job = asyncio.create_task(purger.run())
    try:
        yield
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


def build_purger(settings: Settings, engine: AsyncEngine) -> SessionPurger | None:
    """The job the settings ask for; None when SESSION_RETENTION_SECONDS is 0 (keep forever)."""
    if settings.session_retention_seconds <= 0:
        return None
    return SessionPurger(
        RetentionRepository(engine),
        settings.session_retention_seconds,
        settings.session_purge_interval_seconds,
    )
