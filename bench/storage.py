"""Throwaway PostgreSQL databases and Redis DB index claims on the shared loopback servers that
`make services` starts: one helper for the benchmark and the tests, so several checkouts (a
developer's, CI's, a benchmark) share the servers without meeting each other's data."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis

from .stack import clean_env

# The prefix of the claim keys, in DB 0 of the shared Redis.
CLAIM_KEY = "agent-service-tests:claim:db"
CLAIM_SECONDS = 3600  # a claim left by a crashed run frees itself after an hour


class Unreachable(RuntimeError):
    """A shared server did not answer; the message names it and how to start it."""


def libpq(url: str) -> str:
    """The plain libpq form (asyncpg, psql) of a SQLAlchemy asyncpg URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _why(exc: BaseException) -> str:
    # Not repr(): redis-py's hides the message ("network:ConnectionError").
    return f"{type(exc).__name__}: {exc}"


def _where(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]  # host:port, never the password


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(libpq(url), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _run_admin(url: str, statement: str) -> None:
    try:
        asyncio.run(_admin(url, statement))
    except (OSError, asyncpg.CannotConnectNowError, asyncpg.InvalidPasswordError) as exc:
        raise Unreachable(
            f"PostgreSQL at {_where(url)} is unreachable ({_why(exc)}); "
            "start it with `make services`"
        ) from exc


def migrate(url: str) -> None:
    """`python -m agent_service.migrate` on `url`: the command the platform's Job runs."""
    done = subprocess.run(
        [sys.executable, "-m", "agent_service.migrate"],
        env=clean_env(DATABASE_URL=url, LOG_LEVEL="WARNING"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migration failed:\n{done.stdout}\n{done.stderr}")


def create_database(
    admin_url: str, prefix: str = "agent_bench", migrated: bool = True, template: str = ""
) -> str:
    """A new database on `admin_url`'s server (migrated to head unless told not to); its URL.

    With `template` (a migrated database's name) a migrated database is a copy of it: a tenth
    of a second instead of the migration's seconds (the mutation run creates one per mutant)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if migrated and template:
        _run_admin(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return with_database(admin_url, name)
    _run_admin(admin_url, f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    if migrated:
        migrate(url)
    return url


def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    _run_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisClaim:
    """A Redis DB index held for one run and flushed: the first free one of `indexes`.

    The benchmark and the fault tests take 1..7, the service tests 8..15 (a pytest session
    holds one for all its tests and flushes it per test)."""

    def __init__(self, url: str, indexes: Iterable[int] = range(1, 8)) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=3)
        self._token = uuid.uuid4().hex
        indexes = list(indexes)
        try:
            self.db = next(
                (i for i in indexes if self._client.set(self._key(i), self._token, nx=True,
                                                         ex=CLAIM_SECONDS)),
                None,
            )  # fmt: skip
        except (redis.RedisError, OSError) as exc:
            self._client.close()
            raise Unreachable(
                f"Redis at {_where(url)} is unreachable ({_why(exc)}); "
                "start it with `make services`"
            ) from exc
        if self.db is None:
            self._client.close()
            raise RuntimeError(f"every Redis DB index in {indexes} is claimed by another run")
        self.url = urlunsplit(urlsplit(url)._replace(path=f"/{self.db}"))
        self.flush()

    @staticmethod
    def _key(db: int) -> str:
        return f"{CLAIM_KEY}{db}"

    def flush(self) -> None:
        """Empty the claimed index."""
        client = redis.Redis.from_url(self.url, socket_timeout=3)
        try:
            client.flushdb()
        finally:
            client.close()

    def release(self) -> None:
        if self._client.get(self._key(self.db)) == self._token.encode():
            self._client.delete(self._key(self.db))
        self._client.close()
