"""Alembic migrations up and down on PostgreSQL and SQLite; the embedded default migrates itself
on start, PostgreSQL only through `python -m agent_service.migrate`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from agent_service.migrate import downgrade, upgrade
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .conftest import base_settings, run_app

TABLES = {"sessions", "messages", "tasks"}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


@pytest.fixture(params=["postgres", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("throwaway_database")()
    return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"


async def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    engine = create_async_engine(empty_database)
    try:
        await upgrade(engine)
        assert await _tables(engine) == TABLES | {"alembic_version"}
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("messages"))
            uniques = await conn.run_sync(lambda c: inspect(c).get_unique_constraints("tasks"))
        assert [i["column_names"] for i in indexes] == [["session_id", "id"]]
        assert [u["column_names"] for u in uniques] == [["owner", "idempotency_key"]]
        await downgrade(engine, "base")
        assert await _tables(engine) == {"alembic_version"}
        await upgrade(engine)
        assert await _tables(engine) == TABLES | {"alembic_version"}
    finally:
        await engine.dispose()


async def test_the_schema_matches_the_tables_the_code_uses(pg_database: str) -> None:
    from agent_service.storage.tables import metadata
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_async_engine(pg_database)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


@pytest.fixture
def unmigrated_database(throwaway_database: Callable[[], str]) -> str:
    return throwaway_database()


async def test_the_api_does_not_migrate_postgres(unmigrated_database: str, redis_url: str) -> None:
    url = unmigrated_database
    async with run_app(base_settings(database_url=url, redis_url=redis_url)) as api:
        assert await _tables(api.app.state.engine) == set()
        assert (await api.client.get("/ready")).status_code == 503


def test_migrate_command_on_postgres(throwaway_database: Callable[[], str]) -> None:
    url = throwaway_database()
    env = {**os.environ, "DATABASE_URL": url.replace("+asyncpg", ""), "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "agent_service.migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("migrations applied: head")


async def test_the_embedded_default_migrates_on_start(tmp_path) -> None:
    path = tmp_path / "nested" / "agent.db"
    async with run_app(base_settings(sqlite_path=str(path))) as api:
        assert await _tables(api.app.state.engine) == TABLES | {"alembic_version"}
        assert (await api.client.get("/ready")).json()["status"] == "ready"
    assert path.exists()
    # Restarting on the same file keeps the data (and migrating again is a no-op).
    async with run_app(base_settings(sqlite_path=str(path))) as api:
        assert (await api.client.post("/v1/sessions")).status_code == 201
