"""Fixtures: real PostgreSQL and Redis (from TEST_DATABASE_URL / TEST_REDIS_URL, started by
`make services`), a throwaway database per test session, and the app driven over HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from agent_service.app import create_app
from agent_service.config import Settings
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bench import storage
from bench.storage import libpq

from .fakes import FakeOpenAI

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://agent:agent@127.0.0.1:5433/agent"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
# A migrated database to copy instead of migrating each new one (scripts/mutation.sh sets it).
TEMPLATE_DATABASE = os.environ.get("TEST_TEMPLATE_DATABASE", "")
REDIS_DBS = range(8, 16)  # indexes these tests may claim and flush, one per test run
KEY, OTHER_KEY = "test-key", "other-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_KEY}"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: a developer's DATABASE_URL must not leak into tests.
    No metrics port unless a test asks for one: apps and processes of other test runs on the
    machine would meet on the default 9090."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("METRICS_PORT", "0")


@pytest.fixture(scope="session")
def throwaway_database() -> Iterator[Callable[..., str]]:
    """Creates PostgreSQL databases (empty, or migrated with `migrated=True`), dropped at the
    end; fails when PostgreSQL is unreachable."""
    created: list[str] = []

    def make(migrated: bool = False) -> str:
        try:
            url = storage.create_database(
                TEST_DATABASE_URL, "agent_test", migrated=migrated, template=TEMPLATE_DATABASE
            )
        except storage.Unreachable as exc:
            pytest.fail(str(exc))
        created.append(url)
        return url

    yield make
    for url in created:
        storage.drop_database(TEST_DATABASE_URL, url)


@pytest.fixture(scope="session")
def pg_database(throwaway_database: Callable[..., str]) -> str:
    """The session's migrated PostgreSQL database."""
    return throwaway_database(migrated=True)


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    """The migrated database, emptied for this test."""
    conn = await asyncpg.connect(libpq(pg_database), timeout=5)
    try:
        await conn.execute("TRUNCATE messages, sessions, tasks")
    finally:
        await conn.close()
    return pg_database


@pytest.fixture(scope="session")
def redis_claim() -> Iterator[storage.RedisClaim]:
    """A Redis DB index claimed for this test session (so two runs on one machine, say a
    developer's and CI's, never flush each other's data); fails when Redis is unreachable."""
    try:
        claim = storage.RedisClaim(TEST_REDIS_URL, REDIS_DBS)
    except storage.Unreachable as exc:
        pytest.fail(str(exc))
    yield claim
    claim.release()


@pytest.fixture
def redis_url(redis_claim: storage.RedisClaim) -> str:
    """The claimed Redis DB, flushed for this test."""
    redis_claim.flush()
    return redis_claim.url


def base_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "api_keys": f"{KEY},{OTHER_KEY}",
        "rate_limit": "10000/minute",
        "log_level": "WARNING",
        "pod_name": "test-pod",
        "shutdown_drain_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient


@asynccontextmanager
async def run_app(settings: Settings, **kwargs: object) -> AsyncIterator[Api]:
    """The app with its lifespan running, and an HTTP client over ASGI."""
    app = create_app(settings, **kwargs)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=AUTH, timeout=30
        ) as client:
            yield Api(app, client)


AppFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture(params=["postgres", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path) -> dict[str, object]:
    """Storage settings: PostgreSQL + Redis, or the embedded SQLite + in-process default."""
    if request.param == "postgres":
        return {
            "database_url": request.getfixturevalue("pg_url"),
            "redis_url": request.getfixturevalue("redis_url"),
        }
    return {"sqlite_path": str(tmp_path / "agent.db")}


@pytest.fixture
def pg_stack(pg_url: str, redis_url: str) -> dict[str, object]:
    return {"database_url": pg_url, "redis_url": redis_url}


@pytest.fixture
async def api_pg(pg_stack: dict) -> AsyncIterator[Api]:
    """The app on PostgreSQL + Redis (tasks go to the Redis queue; no worker runs)."""
    async with run_app(base_settings(**pg_stack)) as running:
        yield running


@pytest.fixture
def make_app(stack: dict[str, object]) -> AppFactory:
    """Start the app on the parametrized stack with extra settings."""

    def factory(model: object = None, **overrides: object) -> AbstractAsyncContextManager[Api]:
        return run_app(base_settings(**{**stack, **overrides}), model=model)

    return factory


@pytest.fixture
async def api(make_app: AppFactory) -> AsyncIterator[Api]:
    async with make_app() as running:
        yield running


@pytest.fixture
async def client(api: Api) -> httpx.AsyncClient:
    return api.client


@pytest.fixture
def fake_openai() -> FakeOpenAI:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()
