"""Session locks against a real Redis that stalls or evicts: a lock never outlives the message
that took it by more than one lease, and a lock lost mid-message cannot corrupt the history."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import redis.asyncio as redis

from bench import stack
from bench.faults import PrivateRedis

from .conftest import AUTH, ServiceFactory, until

LOCKS = "agent:lock:session:*"


async def _session(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/sessions", json={})
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_a_message_sent_during_a_redis_stall_leaves_no_lasting_lock(
    start_service: ServiceFactory, shared_database: str, private_redis: PrivateRedis
) -> None:
    """The acquire times out on the client but runs when Redis resumes: that orphan lock lives
    one lease (3 s here), not the ~2 minutes of the longest model call."""
    lease = 3.0
    _, base = start_service(
        shared_database,
        private_redis.url,
        REDIS_TIMEOUT="0.5",
        SESSION_LOCK_LEASE_SECONDS=str(lease),
    )
    store = redis.Redis(port=private_redis.port, socket_timeout=5)
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            sid = await _session(client)
            url = f"/v1/sessions/{sid}/messages"
            assert (await client.post(url, json={"content": "before"})).status_code == 200
            private_redis.pause()
            try:
                # Served with the process lock while Redis does not answer.
                during = await client.post(url, json={"content": "during the stall"})
                assert during.status_code == 200, during.text
            finally:
                private_redis.resume()
            resumed = time.monotonic()

            # The event: the stalled acquire ran on resume and left a lock nobody holds.
            orphans = await until(lambda: store.keys(LOCKS), timeout=5)
            assert len(orphans) == 1
            assert 0 < await store.pttl(orphans[0]) <= lease * 1000

            statuses: list[int] = []

            async def served() -> bool:
                reply = await client.post(url, json={"content": f"after {len(statuses)}"})
                statuses.append(reply.status_code)
                return reply.status_code == 200

            await until(served, timeout=lease + 15, every=0.25)
            waited = time.monotonic() - resumed
        assert waited <= lease + 2, (waited, statuses)
        assert set(statuses) <= {200, 409}, statuses
    finally:
        await store.aclose()


async def test_a_lock_taken_during_a_stall_is_released_when_the_message_ends(
    start_service: ServiceFactory,
    shared_database: str,
    private_redis: PrivateRedis,
    tmp_path: Path,
) -> None:
    """The model outlasts the stall: when the message ends, the lock its timed-out acquire set
    is released by token, so the next message does not wait even for the lease (30 s)."""
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=2500)
    _, base = start_service(
        shared_database,
        private_redis.url,
        REDIS_TIMEOUT="0.5",
        SESSION_LOCK_LEASE_SECONDS="30",
        MODEL_BACKEND="openai",
        MODEL_URL=model_url,
    )
    store = redis.Redis(port=private_redis.port, socket_timeout=5)
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            sid = await _session(client)
            url = f"/v1/sessions/{sid}/messages"
            private_redis.pause()
            try:
                during = asyncio.create_task(client.post(url, json={"content": "slow"}))
                await asyncio.sleep(1.5)  # the acquire has timed out; the model is working
            finally:
                private_redis.resume()
            assert len(await until(lambda: store.keys(LOCKS), timeout=5)) == 1
            assert (await during).status_code == 200
            after = await client.post(url, json={"content": "next"})
            assert after.status_code == 200, after.text
            assert await store.keys(LOCKS) == []
    finally:
        await store.aclose()
        model.stop()


async def test_a_lock_evicted_mid_message_cannot_corrupt_the_history(
    start_service: ServiceFactory, shared_database: str, shared_redis: str, tmp_path: Path
) -> None:
    """ElastiCache evicts keys with a TTL first: the lock goes while the model works and a
    second message runs at the same time. One reply is stored, the other refused with
    409 history_changed, so no stored reply was built from a history it did not see."""
    model, model_url = stack.start_fake_model(tmp_path, latency_ms=2000)
    _, base = start_service(
        shared_database, shared_redis, MODEL_BACKEND="openai", MODEL_URL=model_url
    )
    store = redis.Redis.from_url(shared_redis, socket_timeout=5)
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
            sid = await _session(client)
            url = f"/v1/sessions/{sid}/messages"
            first = asyncio.create_task(client.post(url, json={"content": "one"}))
            [lock] = await until(lambda: store.keys(LOCKS), timeout=10)
            assert await store.delete(lock) == 1  # evicted
            second = asyncio.create_task(client.post(url, json={"content": "two"}))
            replies = [await first, await second]
            statuses = sorted(r.status_code for r in replies)
            assert statuses == [200, 409], [r.text for r in replies]
            won = next(r for r in replies if r.status_code == 200).json()
            lost = next(r for r in replies if r.status_code == 409).json()
            assert lost["error"]["code"] == "history_changed"

            history = (await client.get(url)).json()["items"]
            assert [m["content"] for m in history] == [
                won["message"]["content"],
                won["reply"]["content"],
            ]
            assert (await client.post(url, json={"content": "three"})).status_code == 200
            assert (await client.get(f"/v1/sessions/{sid}")).json()["message_count"] == 4
    finally:
        await store.aclose()
        model.stop()
