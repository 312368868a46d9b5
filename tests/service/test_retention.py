"""Retention: ended sessions and their messages are deleted SESSION_RETENTION_SECONDS after
they ended, in bounded batches, by any number of workers at once; on real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from agent_service.config import Settings
from agent_service.core.retention import SessionPurger, build_purger
from agent_service.storage.retention import RetentionRepository
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.polling import eventually

from .conftest import AUTH, base_settings, libpq, run_app
from .fakes import GatedModel

DAY = 86_400


async def _seed(url: str, ended_ago: timedelta | None, messages: int) -> uuid.UUID:
    """A session that ended `ended_ago` (None: active) with `messages` messages."""
    sid = uuid.uuid4()
    now = datetime.now(UTC)
    conn = await asyncpg.connect(libpq(url))
    try:
        await conn.execute(
            "INSERT INTO sessions (id, owner, agent_type, created_by, created_at, ended_at) "
            "VALUES ($1, 'o', 't', 'p', $2, $3)",
            sid,
            now - timedelta(days=400),
            None if ended_ago is None else now - ended_ago,
        )
        await conn.executemany(
            "INSERT INTO messages (session_id, role, content, created_at) "
            "VALUES ($1, 'user', $2, $3)",
            [(sid, f"m{i}", now) for i in range(messages)],
        )
    finally:
        await conn.close()
    return sid


async def _left(url: str) -> tuple[set[uuid.UUID], int]:
    conn = await asyncpg.connect(libpq(url))
    try:
        ids = {r["id"] for r in await conn.fetch("SELECT id FROM sessions")}
        return ids, await conn.fetchval("SELECT count(*) FROM messages")
    finally:
        await conn.close()


@pytest.fixture
async def engine(pg_url: str) -> AsyncEngine:
    engine = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    yield engine
    await engine.dispose()


async def test_only_sessions_ended_longer_ago_than_the_retention_go(
    pg_url: str, engine: AsyncEngine
) -> None:
    expired = [await _seed(pg_url, timedelta(days=2), 3) for _ in range(5)]
    recent = await _seed(pg_url, timedelta(hours=23), 3)
    active = await _seed(pg_url, None, 3)  # created 400 days ago, never ended
    purger = SessionPurger(RetentionRepository(engine), DAY, 60, batch=4, max_batches=1)

    # One batch: 4 of the 15 expired messages, and only sessions already left without any.
    purged_messages, purged_sessions = await purger.run_once()
    assert purged_messages == 4
    assert purged_sessions <= 1
    ids, count = await _left(pg_url)
    assert count == 3 * 7 - 4

    # The next runs finish the job; nothing else is touched.
    purger = SessionPurger(RetentionRepository(engine), DAY, 60, batch=4, max_batches=100)
    rest = await purger.run_once()
    assert rest == (11, 5 - purged_sessions)
    ids, count = await _left(pg_url)
    assert ids == {recent, active}
    assert count == 6
    assert not set(expired) & ids
    assert await purger.run_once() == (0, 0)


async def test_several_workers_purging_at_once_share_the_work(
    pg_url: str, engine: AsyncEngine
) -> None:
    for _ in range(60):
        await _seed(pg_url, timedelta(days=31), 5)
    kept = await _seed(pg_url, timedelta(days=29), 5)
    engines = [create_async_engine(pg_url, isolation_level="AUTOCOMMIT") for _ in range(4)]
    try:
        purgers = [
            SessionPurger(RetentionRepository(e), 30 * DAY, 60, batch=20, max_batches=100)
            for e in engines
        ]
        results = await asyncio.gather(*(p.run_once() for p in purgers))
    finally:
        for e in engines:
            await e.dispose()
    # Every row deleted exactly once between them, no error (no lock waits, no deadlock).
    assert sum(m for m, _ in results) == 300
    assert sum(s for _, s in results) == 60
    assert await _left(pg_url) == ({kept}, 5)


async def test_rows_another_worker_is_deleting_are_skipped_not_waited_for(
    pg_url: str, engine: AsyncEngine
) -> None:
    busy = await _seed(pg_url, timedelta(days=40), 2)
    emptied = await _seed(pg_url, timedelta(days=40), 0)
    for _ in range(3):
        await _seed(pg_url, timedelta(days=40), 2)
    other_worker = await asyncpg.connect(libpq(pg_url))
    try:
        # Another worker, in the middle of its batches: `busy`'s messages, `emptied`'s row.
        batch = other_worker.transaction()
        await batch.start()
        await other_worker.execute("SELECT 1 FROM messages WHERE session_id = $1 FOR UPDATE", busy)
        await other_worker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", emptied)
        purger = SessionPurger(RetentionRepository(engine), DAY, 60, batch=100)
        assert await asyncio.wait_for(purger.run_once(), 10) == (6, 3)
        ids, count = await _left(pg_url)
        assert ids == {busy, emptied}
        assert count == 2
        await batch.rollback()
    finally:
        await other_worker.close()
    assert await purger.run_once() == (2, 2)


def test_retention_zero_keeps_everything() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    assert build_purger(base_settings(session_retention_seconds=0), engine) is None
    assert build_purger(base_settings(), engine) is not None
    assert Settings.model_fields["session_retention_seconds"].default == 30 * DAY


async def test_a_message_running_when_its_session_is_purged_stores_nothing(
    pg_stack: dict,
) -> None:
    model = GatedModel()
    async with run_app(base_settings(**pg_stack), model=model) as api:
        sid = (await api.client.post("/v1/sessions")).json()["id"]
        running = asyncio.create_task(
            api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "bye"})
        )
        await eventually(lambda: model.waiting == 1)
        assert (await api.client.delete(f"/v1/sessions/{sid}?purge=true")).status_code == 204
        model.release()
        late = await running
        assert late.status_code == 404
        assert late.json()["error"]["code"] == "not_found"
    assert await _left(str(pg_stack["database_url"])) == (set(), 0)


async def test_the_worker_process_runs_the_retention_job(pg_stack: dict) -> None:
    url = str(pg_stack["database_url"])
    async with run_app(base_settings(**pg_stack)) as api:
        old = (await api.client.post("/v1/sessions", headers=AUTH)).json()["id"]
        await api.client.post(f"/v1/sessions/{old}/messages", json={"content": "forget me"})
        await api.client.delete(f"/v1/sessions/{old}")
        kept = (await api.client.post("/v1/sessions")).json()["id"]
    conn = await asyncpg.connect(libpq(url))
    try:
        await conn.execute(
            "UPDATE sessions SET ended_at = now() - interval '2 hours' WHERE id = $1",
            uuid.UUID(old),
        )
    finally:
        await conn.close()
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS}
    env.update(
        DATABASE_URL=url,
        REDIS_URL=str(pg_stack["redis_url"]),
        SESSION_RETENTION_SECONDS="3600",
        SESSION_PURGE_INTERVAL_SECONDS="0.5",
        HOSTNAME="purging-worker",
        WORKER_HEARTBEAT_FILE="",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_service.worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        async def purged() -> bool:
            ids, _ = await _left(url)
            return uuid.UUID(old) not in ids

        await eventually(purged, timeout=30, every=0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, None, 20)
    assert proc.returncode == 0, output
    assert await _left(url) == ({uuid.UUID(kept)}, 0)
    assert '"msg":"ended sessions purged","sessions":1,"messages":2' in output


_SETTINGS = {name.upper() for name in Settings.model_fields} | {"HOSTNAME"}
