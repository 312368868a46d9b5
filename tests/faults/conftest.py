"""Fault tests: the service as a real process (one uvicorn process, as in a pod) against real
PostgreSQL and Redis. A server a test stops is private to that test (bench/faults.py); the
shared ones `make services` starts are only given a throwaway database and a Redis DB index."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench import stack, storage
from bench.faults import PrivatePostgres, PrivateRedis
from bench.polling import eventually

ADMIN_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://agent:agent@127.0.0.1:5433/agent"
)
SHARED_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
API_KEY = stack.API_KEY
AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def until(check: Callable[[], object], timeout: float = 30.0, every: float = 0.05):
    """`eventually` with the longer defaults that real processes under load need."""
    return await eventually(check, timeout=timeout, every=every)


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A migrated throwaway database on the shared PostgreSQL."""
    try:
        url = storage.create_database(ADMIN_DATABASE_URL, prefix="agent_faults")
    except storage.Unreachable as exc:
        pytest.fail(str(exc))
    yield url
    storage.drop_database(ADMIN_DATABASE_URL, url)


@pytest.fixture
def shared_redis() -> Iterator[str]:
    """A flushed Redis DB index on the shared Redis, held for this test."""
    try:
        claim = storage.RedisClaim(SHARED_REDIS_URL)
    except storage.Unreachable as exc:
        pytest.fail(str(exc))
    yield claim.url
    claim.release()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster only these tests use (and may stop)."""
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.destroy()


ServiceFactory = Callable[..., tuple[stack.Proc, str]]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start `python -m agent_service` (stopped at teardown); returns (process, base URL)."""
    started: list[stack.Proc] = []

    def start(database_url: str, redis_url: str | None, **env: str) -> tuple[stack.Proc, str]:
        port = stack.free_port()
        environ = stack.service_env(database_url, redis_url, port, **env)
        proc = stack.start_service(environ, tmp_path, name=f"service{len(started)}")
        started.append(proc)
        return proc, f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.stop(timeout=30)
