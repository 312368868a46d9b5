"""PostgreSQL stopped mid-load: JSON 503s, never a 500, /ready 503 (liveness stays 200), and the
service recovers by itself when the database returns; a reply streaming at the time ends with an
`error` event."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bench import stack, storage
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


async def test_postgres_stopped_mid_stream_ends_the_stream_with_an_error_event(
    start_service: ServiceFactory,
    private_pg: PrivatePostgres,
    private_database: str,
    shared_redis: str,
    tmp_path: Path,
) -> None:
    """The reply streams while PostgreSQL stops; storing it fails: the stream's last event is a
    JSON `error` (database_unavailable), and nothing is logged or counted as a 500."""
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=100, token_rate=10, tokens=30)
    metrics_port = stack.free_port()
    proc, base = start_service(
        private_database,
        shared_redis,
        DB_CONNECT_TIMEOUT="2",
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
        METRICS_PORT=str(metrics_port),
    )
    events: list[tuple[str, dict]] = []
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            sid = (await client.post("/v1/sessions", json={})).json()["id"]
            async with client.stream(
                "POST",
                f"/v1/sessions/{sid}/messages",
                json={"content": "a long answer please"},
                headers={"Accept": "text/event-stream"},
            ) as response:
                assert response.status_code == 200
                async for block in _sse_blocks(response):
                    events.append(block)
                    if len(events) == 1:
                        await asyncio.to_thread(private_pg.stop)  # 3 s of tokens still to come
            metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    finally:
        await asyncio.to_thread(private_pg.start)
        model.stop()

    names = [name for name, _ in events]
    assert names[0] == "token"
    assert names[-1] == "error", names
    assert "done" not in names
    assert events[-1][1]["error"]["code"] == "database_unavailable"
    assert events[-1][1]["error"]["message"]
    chat_route = 'route="/v1/sessions/{session_id}/messages"'
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("http_requests_total{") and chat_route in line
    ]
    assert len(counted) == 1 and 'status="200"' in counted[0], counted  # the stream's 200
    assert '"unhandled error"' not in proc.output()
    assert "Traceback" not in proc.output()


async def _sse_blocks(response: httpx.Response) -> AsyncIterator[tuple[str, dict]]:
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event is not None:
            yield event, json.loads(line.removeprefix("data: "))
            event = None
