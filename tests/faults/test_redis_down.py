"""Redis stopped mid-load: chat keeps answering (cache bypassed, rate limit and session locks in
memory), /ready reports it, and everything goes back to Redis when it returns, without a
restart."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.faults import PrivateRedis, SteadyLoad

from .conftest import API_KEY, AUTH, ServiceFactory, until


async def test_redis_stopped_mid_load_chat_keeps_answering_and_recovers(
    start_service: ServiceFactory, shared_database: str, private_redis: PrivateRedis
) -> None:
    proc, base = start_service(shared_database, private_redis.url)
    load = SteadyLoad(base, API_KEY, users=4, deadline_s=60)
    running = asyncio.create_task(load.run())
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as client:

        async def recovered() -> bool:
            return (await client.get("/ready")).json()["status"] == "ready"

        await until(lambda: len(load.outcomes) >= 60)
        private_redis.stop()
        stopped = time.monotonic()
        await until(lambda: load.statuses("chat", since=stopped).get(200, 0) >= 20)
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["redis"]["status"] == "down"

        private_redis.start()  # the same address, empty
        back = time.monotonic()
        await until(recovered, timeout=20)
        await until(lambda: load.statuses("chat", since=back).get(200, 0) >= 10)
        load.stop_sending()
        await running

        # The response cache lives in Redis again.
        replies = []
        for _ in range(2):
            sid = (await client.post("/v1/sessions", json={})).json()["id"]
            chat = await client.post(f"/v1/sessions/{sid}/messages", json={"content": "same"})
            replies.append(chat.json()["cached"])
        assert replies == [False, True]
    assert load.statuses() == {200: len(load.outcomes)}, load.statuses()
    assert proc.alive()
