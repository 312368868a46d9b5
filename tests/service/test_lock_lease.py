"""The session lock's lease on its own (SessionLocks and Lease against the real Redis): renewed
every third of the lease while the message runs, for at most max_hold, never after it stops;
taken back when it vanished, given up to another holder; released only by its own token; and
what an operator reads in the log when Redis goes away and comes back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from agent_service.core.locks import SessionLocks
from agent_service.core.redis import RedisGate, create_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.stack import free_port

OWNER = "owner-a"


@pytest.fixture
async def gate(redis_url: str) -> AsyncIterator[RedisGate]:
    gate = RedisGate(create_redis(redis_url, timeout=2.0, max_connections=4), cooldown=30.0)
    yield gate
    await gate.close()


async def _taken(locks: SessionLocks, gate: RedisGate):
    token = locks.token(OWNER, uuid.uuid4())
    assert token.remote and len(token.value) == 16
    assert token.key == f"agent:lock:session:{OWNER}:{token.key.rsplit(':', 1)[1]}"
    assert await gate.client.set(token.key, token.value, nx=True, px=token.ttl_ms)
    return token


async def test_a_lease_is_renewed_every_third_of_it_and_stops_when_told(gate: RedisGate) -> None:
    locks = SessionLocks(lease_seconds=0.3, max_hold_seconds=60, redis=gate)
    token = await _taken(locks, gate)
    assert token.ttl_ms == 300
    lease = locks.lease(token)
    assert lease is not None
    await asyncio.sleep(0.75)  # more than two leases: alive only if renewed
    assert 0 < await gate.client.pttl(token.key) <= 300
    assert await gate.client.get(token.key) == token.value.encode()
    await lease.stop()
    await asyncio.sleep(0.4)
    assert await gate.client.exists(token.key) == 0  # expired: nothing renewed it after stop
    assert lease.lost is False


async def test_renewals_end_after_max_hold(gate: RedisGate) -> None:
    """Lease 1.5 s (renewed every 0.5 s), max hold 2 s: the last renewal is the one at 1.5 s
    (the next would be at 2 s, not before max hold), so the lock is gone by 3 s; one more
    renewal would keep it until 3.5 s and later."""
    locks = SessionLocks(lease_seconds=1.5, max_hold_seconds=2.0, redis=gate)
    token = await _taken(locks, gate)
    lease = locks.lease(token)
    await asyncio.sleep(1.7)
    assert await gate.client.exists(token.key) == 1  # renewed
    await asyncio.sleep(1.8)  # 3.5 s
    assert await gate.client.exists(token.key) == 0
    await lease.stop()


class BlockingRenewals(SessionLocks):
    """Renewals that wait for `go`, so a test can stop a lease while one is in flight."""

    def __init__(self, gate: RedisGate) -> None:
        super().__init__(lease_seconds=0.3, max_hold_seconds=60, redis=gate)
        self.calls = 0
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def renew(self, token):
        self.calls += 1
        self.entered.set()
        await self.go.wait()
        return await super().renew(token)


async def test_stop_waits_for_a_renewal_in_flight_and_none_follows(gate: RedisGate) -> None:
    locks = BlockingRenewals(gate)
    token = await _taken(locks, gate)
    lease = locks.lease(token)
    await asyncio.wait_for(locks.entered.wait(), 2)
    stopping = asyncio.create_task(lease.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # it waits: a renewal after the release would re-take the lock
    locks.go.set()
    await asyncio.wait_for(stopping, 2)
    assert locks.calls == 1
    await asyncio.sleep(0.35)  # three renewal periods
    assert locks.calls == 1


async def test_no_renewal_is_tried_while_the_gate_is_closed(gate: RedisGate) -> None:
    locks = SessionLocks(lease_seconds=0.3, max_hold_seconds=60, redis=gate)
    token = await _taken(locks, gate)
    await gate.client.pexpire(token.key, 100_000)
    gate.failed(RedisConnectionError("refused"))
    assert await locks.renew(token) is None
    assert await gate.client.pttl(token.key) > 10_000  # not renewed to the 300 ms lease


async def test_a_release_lost_to_an_outage_is_reported_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agent_service.core.redis")
    down = RedisGate(
        create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, max_connections=2),
        cooldown=30.0,
    )
    try:
        locks = SessionLocks(lease_seconds=5, max_hold_seconds=60, redis=down)
        token = locks.token(OWNER, uuid.uuid4())
        assert await locks.release(token, ("agent:cache:x", "reply", 300)) is False
        assert not down.available
    finally:
        await down.close()
    [record] = caplog.records
    assert record.getMessage() == "redis unavailable; using fallbacks"
    assert record.error.startswith("ConnectionError: ")


async def test_a_vanished_lock_is_taken_back_and_another_holder_is_left_alone(
    gate: RedisGate, caplog: pytest.LogCaptureFixture
) -> None:
    locks = SessionLocks(lease_seconds=0.3, max_hold_seconds=60, redis=gate)
    token = await _taken(locks, gate)
    assert await locks.renew(token) == 1
    await gate.client.delete(token.key)  # evicted
    assert await locks.renew(token) == 2
    assert await gate.client.get(token.key) == token.value.encode()
    assert 0 < await gate.client.pttl(token.key) <= 300
    await gate.client.set(token.key, "someone-else", px=5000)
    assert await locks.renew(token) == 0
    assert await gate.client.get(token.key) == b"someone-else"
    assert await gate.client.pttl(token.key) > 4000

    # The same through a running lease: taken back, then given up (and logged as such).
    caplog.set_level(logging.WARNING, logger="agent_service.core.locks")
    await gate.client.delete(token.key)
    lease = locks.lease(token)
    await asyncio.sleep(0.15)
    assert await gate.client.get(token.key) == token.value.encode()
    await gate.client.set(token.key, "someone-else", px=5000)
    await asyncio.sleep(0.25)
    assert lease.lost is True
    await lease.stop()
    assert await gate.client.get(token.key) == b"someone-else"
    assert [(r.getMessage(), r.lock) for r in caplog.records] == [
        ("session lock had vanished; taken back", token.key),
        ("session lock taken over by another message", token.key),
    ]


async def test_release_deletes_only_its_own_lock_and_writes_the_cache_entry(
    gate: RedisGate,
) -> None:
    locks = SessionLocks(lease_seconds=5, max_hold_seconds=60, redis=gate)
    token = await _taken(locks, gate)
    assert await locks.release(token, ("agent:cache:x", "reply", 300)) is True
    assert await gate.client.exists(token.key) == 0
    assert await gate.client.get("agent:cache:x") == b"reply"
    assert 299 <= await gate.client.ttl("agent:cache:x") <= 300
    token = await _taken(locks, gate)
    await gate.client.set(token.key, "someone-else")
    assert await locks.release(token) is False  # no cache entry to write
    assert await gate.client.get(token.key) == b"someone-else"


async def test_without_redis_the_lock_is_per_process(gate: RedisGate) -> None:
    assert SessionLocks(2.5, 60, gate).token(OWNER, uuid.uuid4()).ttl_ms == 2500
    locks = SessionLocks(lease_seconds=5, max_hold_seconds=60)
    token = locks.token(OWNER, uuid.uuid4())
    assert not token.remote and token.value == ""
    assert locks.lease(token) is None
    assert await locks.renew(token) is None
    held = locks.acquire_local(token)
    assert held is not None and not held.remote
    assert locks.acquire_local(token) is None
    assert await locks.release(held) is False
    assert locks.acquire_local(token) is not None


async def test_a_local_lock_taken_after_a_failed_acquire_releases_the_redis_one_too(
    gate: RedisGate,
) -> None:
    """The Redis acquire may have run although the client gave up on it: the process lock keeps
    its token and deletes that Redis lock when the message ends."""
    locks = SessionLocks(lease_seconds=5, max_hold_seconds=60, redis=gate)
    token = await _taken(locks, gate)
    held = locks.acquire_local(token)
    assert held is not None and not held.remote and held.value == token.value
    assert await locks.release(held) is False
    assert await gate.client.exists(token.key) == 0
    assert locks.acquire_local(token) is not None


async def test_redis_down_is_logged_once_with_its_error_and_recovery_once(
    gate: RedisGate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_service.core.redis")
    down = RedisGate(
        create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, max_connections=2),
        cooldown=0.2,
    )
    try:
        locks = SessionLocks(lease_seconds=5, max_hold_seconds=60, redis=down)
        token = locks.token(OWNER, uuid.uuid4())
        assert token.remote
        assert await locks.renew(token) is None  # the attempt fails: the gate closes
        assert not down.available
        assert locks.token(OWNER, uuid.uuid4()).remote is False  # not worth trying now
        assert await locks.renew(token) is None
        await asyncio.sleep(0.25)
        assert await locks.renew(token) is None  # tried again after the cooldown, failed again
        down.failed(RedisConnectionError("still refused"))
    finally:
        await down.close()
    gate.failed(TimeoutError())
    gate.succeeded()
    gate.succeeded()
    records = [(r.levelname, r.getMessage(), getattr(r, "error", None)) for r in caplog.records]
    assert len(records) == 3
    assert records[0][:2] == ("WARNING", "redis unavailable; using fallbacks")
    assert records[0][2].startswith("ConnectionError: ")
    assert records[1:] == [
        ("WARNING", "redis unavailable; using fallbacks", "TimeoutError"),
        ("INFO", "redis available again", None),
    ]
