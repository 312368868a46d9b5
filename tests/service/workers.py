"""Helpers for the tests that run the real worker loop in-process (against real PostgreSQL and
Redis) next to the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agent_service.config import Settings
from agent_service.core.metrics import Metrics
from agent_service.core.models.local import LocalBackend
from agent_service.core.queue import GROUP, STREAMS
from agent_service.core.redis import create_redis
from agent_service.worker import Worker, build_worker
from sqlalchemy.ext.asyncio import create_async_engine

from bench.polling import eventually

from .conftest import Api, base_settings


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
    running = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await client.aclose()
        await engine.dispose()


def worker_settings(pg_stack: dict, **overrides: object) -> Settings:
    return base_settings(**{**pg_stack, "task_reclaim_idle_seconds": 30, **overrides})


async def task(api: Api, task_id: str) -> dict:
    return (await api.client.get(f"/v1/tasks/{task_id}")).json()


async def until_status(api: Api, task_id: str, *statuses: str, timeout: float = 10.0) -> dict:
    async def check() -> dict | None:
        body = await task(api, task_id)
        return body if body["status"] in statuses else None

    return await eventually(check, timeout=timeout)


async def pending(api: Api) -> int:
    """Entries delivered and not acknowledged, over both streams."""
    client = api.app.state.redis.client
    total = 0
    for stream in STREAMS.values():
        total += (await client.xpending(stream, GROUP))["pending"]
    return total


async def no_pending(api: Api) -> bool:
    return await pending(api) == 0
