"""Metrics scraped from real processes, as the cluster's scraper does: a running worker (its
task counters, and the queue's depth and oldest age measured from Redis) and the API (on its
metrics port; the public port answers 404 for /metrics). Neither port holds a shutdown."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import httpx

from bench import stack

from ..service.scrape import value
from .conftest import AUTH, ServiceFactory, until

MODEL_SECONDS = 2.5  # each task's model call: long enough to look at the queue meanwhile


async def _scrape(port: int) -> str:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as scraper:
        response = await scraper.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_a_running_worker_is_scraped(
    start_service: ServiceFactory, shared_database: str, shared_redis: str, tmp_path: Path
) -> None:
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=MODEL_SECONDS * 1000)
    _, base = start_service(shared_database, shared_redis)
    port = stack.free_port()
    env = stack.service_env(
        shared_database,
        shared_redis,
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
        WORKER_CONCURRENCY="1",
        METRICS_PORT=str(port),
        WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        WORKER_READY_FILE=str(tmp_path / "ready"),
    )
    worker = stack.start_worker(env, tmp_path)
    try:
        idle = await _scrape(port)
        for priority in ("high", "normal"):
            assert value(idle, "agent_queue_depth", priority=priority) == 0
            assert value(idle, "agent_queue_oldest_age_seconds", priority=priority) == 0
            assert value(idle, "agent_worker_tasks_started_total", priority=priority) == 0
        assert value(idle, "agent_worker_tasks_running") == 0

        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as client:
            ids = [
                (await client.post("/v1/tasks", json={"prompt": f"n{i}"})).json()["id"]
                for i in range(3)
            ]

            async def started() -> str | None:
                text = await _scrape(port)
                one = value(text, "agent_worker_tasks_started_total", priority="normal")
                return text if one else None

            # One task runs (its entry pending), two wait: the backlog of three it created.
            busy = await until(started, timeout=30, every=0.1)
            assert value(busy, "agent_queue_depth", priority="normal") == 3
            assert value(busy, "agent_queue_oldest_age_seconds", priority="normal") > 0
            assert value(busy, "agent_queue_depth", priority="high") == 0
            assert value(busy, "agent_queue_oldest_age_seconds", priority="high") == 0
            assert value(busy, "agent_worker_tasks_running") == 1

            high = await client.post("/v1/tasks", json={"prompt": "h", "priority": "high"})
            ids.append(high.json()["id"])
            await asyncio.sleep(0.05)
            waiting = await _scrape(port)
            assert value(waiting, "agent_queue_depth", priority="high") == 1
            assert value(waiting, "agent_queue_oldest_age_seconds", priority="high") > 0
            assert value(waiting, "agent_queue_depth", priority="normal") == 3

            async def all_done() -> bool:
                for task_id in ids:
                    status = (await client.get(f"/v1/tasks/{task_id}")).json()["status"]
                    if status != "succeeded":
                        return False
                return True

            await until(all_done, timeout=60, every=0.2)

        async def drained() -> str | None:
            text = await _scrape(port)
            return text if value(text, "agent_worker_tasks_running") == 0 else None

        done = await until(drained, timeout=10, every=0.1)
    finally:
        worker.stop()
        model.stop()
    finished = "agent_worker_tasks_finished_total"
    assert value(done, "agent_worker_tasks_started_total", priority="normal") == 3
    assert value(done, "agent_worker_tasks_started_total", priority="high") == 1
    assert value(done, finished, priority="normal", outcome="succeeded") == 3
    assert value(done, finished, priority="high", outcome="succeeded") == 1
    for outcome in ("failed", "cancelled", "handed_back"):
        assert value(done, finished, priority="normal", outcome=outcome) == 0
    assert value(done, "agent_worker_task_duration_seconds_count", priority="normal") == 3
    assert value(done, "agent_worker_task_duration_seconds_sum", priority="normal") >= (
        3 * MODEL_SECONDS
    )
    for priority in ("high", "normal"):
        assert value(done, "agent_queue_depth", priority=priority) == 0
        assert value(done, "agent_queue_oldest_age_seconds", priority=priority) == 0
    assert value(done, "agent_worker_reclaims_total") == 0
    assert '"msg":"worker stopped"' in worker.output()


async def test_the_api_serves_metrics_on_its_metrics_port_only(
    start_service: ServiceFactory, shared_database: str, shared_redis: str, tmp_path: Path
) -> None:
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=1500)
    port = stack.free_port()
    proc, base = start_service(
        shared_database,
        shared_redis,
        METRICS_PORT=str(port),
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
        SHUTDOWN_DRAIN_SECONDS="1",
    )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as client:
            # What the load balancer forwards: the public port has no /metrics.
            public = await client.get("/metrics")
            assert public.status_code == 404
            assert public.json()["error"]["code"] == "not_found"
            sid = (await client.post("/v1/sessions", headers=AUTH)).json()["id"]
            chat = asyncio.create_task(
                client.post(f"/v1/sessions/{sid}/messages", json={"content": "hi"}, headers=AUTH)
            )

            async def waiting() -> str | None:
                text = await _scrape(port)
                return text if value(text, "agent_chats_in_flight") == 1 else None

            during = await until(waiting, timeout=10, every=0.05)
            assert (await chat).status_code == 200
        after = await _scrape(port)
        held = _hold_open(port)  # a scraper's connection, its request half sent
        proc.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = await asyncio.to_thread(proc.popen.wait, 30)
        exited_after = time.monotonic() - signalled
        held.close()
    finally:
        model.stop()
    assert value(during, "agent_sessions_active") == 1
    assert value(during, "agent_sessions_capacity") == 100_000  # the benchmark env's cap
    assert value(after, "agent_chats_in_flight") == 0
    assert value(after, "agent_model_requests_total", backend="openai", outcome="ok") == 1
    assert value(after, "agent_model_requests_total", backend="openai", outcome="timeout") == 0
    assert value(after, "agent_model_request_duration_seconds_sum", backend="openai") >= 1.5
    assert value(after, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert code == 0, proc.output()[-3000:]
    assert exited_after < 1 + 5, exited_after  # the drain, then nothing in flight to wait for
    assert '"msg":"agent service stopped"' in proc.output()


def _hold_open(port: int) -> socket.socket:
    held = socket.create_connection(("127.0.0.1", port), timeout=5)
    held.sendall(b"GET /metrics HTTP/1.1\r\nHost: scraper\r\n")
    return held
