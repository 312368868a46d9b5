"""A worker SIGKILLed in the middle of a task: another worker reclaims the task after the idle
timeout and completes it, exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import redis.asyncio as redis
from agent_service.core.queue import GROUP, STREAMS

from bench import stack

from .conftest import AUTH, ServiceFactory, until


async def test_a_killed_workers_task_completes_exactly_once_after_reclaim(
    start_service: ServiceFactory, shared_database: str, shared_redis: str, tmp_path: Path
) -> None:
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=1500)
    _, base = start_service(shared_database, shared_redis)
    env = stack.service_env(
        shared_database,
        shared_redis,
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
        WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        # One setting for every worker, as in a deployment: the doomed worker's lease on its
        # task and its pending entry both lapse 1 s after it dies.
        TASK_RECLAIM_IDLE_SECONDS="1",
    )
    first = stack.start_worker({**env, "HOSTNAME": "doomed"}, tmp_path, "worker-doomed")
    second = None
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as client:
            task_id = (await client.post("/v1/tasks", json={"prompt": "survive"})).json()["id"]

            async def task() -> dict:
                return (await client.get(f"/v1/tasks/{task_id}")).json()

            async def running() -> bool:
                return (await task())["status"] == "running"

            await until(running)  # claimed; its model call takes 1.5 s
            first.signal(signal.SIGKILL)
            first.popen.wait(10)
            assert (await task())["status"] == "running"  # nobody finished it

            second = stack.start_worker(
                {**env, "HOSTNAME": "rescuer"},
                tmp_path,
                "worker-rescuer",
            )

            async def finished() -> dict | None:
                body = await task()
                return body if body["status"] not in {"queued", "running"} else None

            done = await until(finished, timeout=30)
        assert done["status"] == "succeeded"
        assert done["result"].startswith("tok0 tok1")
        assert done["attempts"] == 2  # the killed worker's, then the rescuer's

        # Acknowledged, so no worker will run it again; completed once, by the rescuer.
        client = redis.Redis.from_url(shared_redis)
        try:
            pending = [(await client.xpending(s, GROUP))["pending"] for s in STREAMS.values()]
        finally:
            await client.aclose()
        assert pending == [0, 0]
        finished_lines = [
            line
            for line in second.output().splitlines()
            if '"msg":"task finished"' in line and task_id in line
        ]
        assert len(finished_lines) == 1, second.output()[-2000:]
        assert '"msg":"task finished"' not in first.output()
    finally:
        for proc in (first, second, model):
            if proc is not None:
                proc.stop()
