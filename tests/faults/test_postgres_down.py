"""PostgreSQL stopped mid-load: JSON 503s, never a 500, /ready 503 (liveness stays 200), and the
service recovers by itself when the database returns."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from bench import storage
from bench.faults import PrivatePostgres, SteadyLoad

from .conftest import API_KEY, AUTH, ServiceFactory, until


@pytest.fixture
def private_database(private_pg: PrivatePostgres) -> Iterator[str]:
    url = storage.create_database(private_pg.url(), prefix="agent_faults")
    yield url
    storage.drop_database(private_pg.url(), url)


async def test_postgres_stopped_is_503_never_500_and_recovers(
    start_service: ServiceFactory,
    private_pg: PrivatePostgres,
    private_database: str,
    shared_redis: str,
) -> None:
    proc, base = start_service(private_database, shared_redis, DB_CONNECT_TIMEOUT="2")
    load = SteadyLoad(base, API_KEY, users=4, deadline_s=60)
    running = asyncio.create_task(load.run())
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as client:
        try:
            await until(lambda: len(load.outcomes) >= 60)
            await asyncio.to_thread(private_pg.stop)
            stopped = time.monotonic()
            await until(lambda: load.statuses("chat", since=stopped).get(503, 0) >= 10)

            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"]["status"] == "down"
            assert (await client.get("/health")).status_code == 200
            for refused in (
                await client.post("/v1/sessions", json={}),
                await client.post("/v1/tasks", json={"prompt": "p"}),
            ):
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == "database_unavailable"
                assert refused.headers["retry-after"] == "5"
        finally:
            await asyncio.to_thread(private_pg.start)
        back = time.monotonic()

        async def ready_again() -> bool:
            return (await client.get("/ready")).status_code == 200

        await until(ready_again, timeout=30)
        await until(lambda: load.statuses("chat", since=back).get(200, 0) >= 10)
        load.stop_sending()
        await running

    statuses = load.statuses()
    assert set(statuses) == {200, 503}, statuses
    assert load.statuses("health") == {200: len([o for o in load.outcomes if o.kind == "health"])}
    for outcome in load.outcomes:
        if outcome.status == 503:
            assert json.loads(outcome.body)["error"]["code"] == "database_unavailable"
    assert proc.alive()
