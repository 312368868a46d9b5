"""What KEDA's redis-streams triggers read during a burst of tasks, against the backlog the API
reports: a real worker drains a burst while the test reads the streams with the scaler's own
commands (KEDA 2.20, pkg/scalers/redis_streams_scaler.go):

- `lagCount` mode (consumerGroup + lagCount): INFO (redis_version must be 7+), then XINFO GROUPS
  <stream> and the `lag` of our group;
- `pendingEntriesCount` mode (consumerGroup alone): XPENDING <stream> <group>, its count.

The ScaledObject (infra/components/workload/autoscaling.py) sums the four with
`scalingModifiers` and targets WORKER_CONCURRENCY per worker. The API reports each task's status:
every `queued` task must be lag, every `running` one a pending entry, per priority.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import httpx
import redis.asyncio as redis
from agent_service.core.queue import GROUP, STREAMS

from bench import stack

from .conftest import AUTH, ServiceFactory, until

CONCURRENCY = 4
MODEL_MS = 2500  # each task's model call: the backlog holds still between completions
BURST = {"high": 6, "normal": 18}


async def keda_reads(client: redis.Redis) -> dict[str, dict[str, int]]:
    """Per priority, the lag and pending count as KEDA's scaler reads them."""
    info = await client.info("server")
    assert int(str(info["redis_version"]).split(".")[0]) >= 7  # the lag mode needs Redis 7+
    out = {}
    for priority, stream in STREAMS.items():
        groups = await client.xinfo_groups(stream)
        (ours,) = [g for g in groups if g["name"] in (GROUP, GROUP.encode())]
        pending = await client.xpending(stream, GROUP)
        out[priority] = {"lag": int(ours["lag"]), "pending": int(pending["pending"])}
    return out


async def api_backlog(api: httpx.AsyncClient, ids: dict[str, list[str]]) -> dict[str, dict]:
    """Per priority, how many tasks the API reports queued and running."""
    out = {}
    for priority, task_ids in ids.items():
        statuses = [(await api.get(f"/v1/tasks/{i}")).json()["status"] for i in task_ids]
        out[priority] = {"lag": statuses.count("queued"), "pending": statuses.count("running")}
    return out


def composite(reads: dict[str, dict[str, int]]) -> int:
    """high_lag + high_pending + normal_lag + normal_pending (the ScaledObject's formula)."""
    return sum(r["lag"] + r["pending"] for r in reads.values())


async def test_the_lag_and_pending_keda_reads_are_the_backlog_the_api_reports(
    start_service: ServiceFactory, shared_database: str, shared_redis: str, tmp_path: Path
) -> None:
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=MODEL_MS)
    _, base = start_service(shared_database, shared_redis)
    env = stack.service_env(
        shared_database,
        shared_redis,
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
        WORKER_CONCURRENCY=str(CONCURRENCY),
        WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        WORKER_READY_FILE=str(tmp_path / "ready"),
    )
    worker = stack.start_worker(env, tmp_path)
    streams = redis.Redis.from_url(shared_redis, decode_responses=True)
    snapshots: list[tuple[dict, dict]] = []
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as api:
            idle = await keda_reads(streams)
            assert composite(idle) == 0

            async def submit(priority: str, n: int) -> str:
                body = {"prompt": f"{priority}-{n}", "priority": priority}
                return (await api.post("/v1/tasks", json=body)).json()["id"]

            ids = {
                p: list(await asyncio.gather(*(submit(p, i) for i in range(n))))
                for p, n in BURST.items()
            }

            async def settled() -> tuple[dict, dict] | None:
                # The API's statuses, KEDA's reads, the statuses again: equal when no task
                # started or finished in between.
                before = await api_backlog(api, ids)
                reads = await keda_reads(streams)
                after = await api_backlog(api, ids)
                return (before, reads) if before == after else None

            async def snapshot_with(running: int) -> tuple[dict, dict] | None:
                found = await settled()
                if found and sum(r["pending"] for r in found[0].values()) == running:
                    return found
                return None

            # The burst: every slot busy, the rest queued.
            snapshots.append(await until(lambda: snapshot_with(CONCURRENCY), timeout=30))
            # Later, part of it done: still consistent.
            await asyncio.sleep(MODEL_MS / 1000 * 2)
            snapshots.append(await until(settled, timeout=30))

            async def drained() -> dict | None:
                reads = await keda_reads(streams)
                return reads if composite(reads) == 0 else None

            done = await until(drained, timeout=60)
            statuses = await api_backlog(api, ids)
    finally:
        await streams.aclose()
        worker.stop()
        model.stop()

    first_api, first_keda = snapshots[0]
    assert first_keda == first_api
    # 24 tasks, 4 running (high priority first): 2 high and 18 normal still queued.
    assert first_keda == {"high": {"lag": 2, "pending": 4}, "normal": {"lag": 18, "pending": 0}}
    assert composite(first_keda) == 24
    # KEDA's composite AverageValue target WORKER_CONCURRENCY: ceil(24 / 4) = 6 workers
    assert math.ceil(composite(first_keda) / CONCURRENCY) == 6
    later_api, later_keda = snapshots[1]
    assert later_keda == later_api
    assert 0 < composite(later_keda) < 24
    assert done == {"high": {"lag": 0, "pending": 0}, "normal": {"lag": 0, "pending": 0}}
    assert statuses == done  # nothing queued or running once KEDA reads zero
