"""The async engine: PostgreSQL (asyncpg, optionally with Secrets Manager credentials) or the
embedded SQLite file."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from ..config import VERIFYING_SSLMODES, ConfigError, Settings
from .secrets import SecretCredentials


class DatabaseUnavailable(Exception):
    """No connection to the database could be made (down, unreachable, refused our login)."""


# What opening a connection raises when the server is down, unreachable or refuses our login
# (SQLAlchemy wraps some driver errors in DBAPIError, passes others such as OSError through), or
# when the pool has no connection to give within DB_POOL_TIMEOUT.
CONNECT_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    DBAPIError,
    PoolTimeoutError,
)

# SQLSTATE 28P01 (invalid_password) and 28000 (invalid_authorization_specification).
AUTH_ERRORS = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)

# What using a connection raises once the server is gone (stopped, restarted, failed over):
# SQLSTATE class 08 (connection exception), 57P01..57P03 (shutdown), a closed socket, or the
# protocol left mid-operation by a shutdown that arrived during a statement (InternalClientError,
# seen in the PostgreSQL-stopped fault test). Any of these makes the connection unusable.
LOST_ERRORS = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def _pool_args(settings: Settings) -> dict:
    return {
        # Statements commit on their own (see repositories); it also keeps pre-ping to a single
        # round trip, where otherwise it is wrapped in BEGIN/ROLLBACK.
        "isolation_level": "AUTOCOMMIT",
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_pre_ping": settings.db_pool_pre_ping,
        "pool_recycle": 1800,
    }


def _asyncpg_args(settings: Settings) -> dict:
    return {
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.db_command_timeout,
        "server_settings": {"application_name": "agent-service"},
    }


def create_engine(settings: Settings, secrets: SecretCredentials | None = None) -> AsyncEngine:
    """The engine the settings describe (see Settings.embedded for which one)."""
    if settings.db_secret_arn:
        if secrets is None:
            secrets = SecretCredentials(settings.db_secret_arn, settings.aws_region)
        return _skip_closed(_secret_engine(settings, secrets))
    if settings.database_url:
        return _skip_closed(
            create_async_engine(
                settings.database_url, connect_args=_asyncpg_args(settings), **_pool_args(settings)
            )
        )
    return _sqlite_engine(settings.sqlite_path)


def _skip_closed(engine: AsyncEngine) -> AsyncEngine:
    """Never hand out a pooled connection whose server has gone away.

    asyncpg marks a connection closed as soon as the server drops it (a stop, restart or
    failover closes the socket), so this check needs no round trip, unlike DB_POOL_PRE_PING's
    `SELECT 1` on every checkout. The pool replaces a closed connection with a new one (or
    fails with DatabaseUnavailable while the server is down). A connection that dies silently
    fails its next statement instead, and pool_recycle bounds the age of every connection.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _closed(dbapi_connection: object, _record: object, _proxy: object) -> None:
        if dbapi_connection.driver_connection.is_closed():  # type: ignore[attr-defined]
            raise DisconnectionError("connection closed by the server")

    return engine


def db_ssl(settings: Settings) -> ssl.SSLContext | str:
    """asyncpg's `ssl` for DB_SSLMODE.

    verify-ca and verify-full get a context that trusts only the CAs in DB_SSLROOTCERT (not the
    system's store, and not asyncpg's ~/.postgresql/root.crt lookup) and always encrypts;
    verify-full also requires the certificate to name DB_HOST. Other modes pass through."""
    if settings.db_sslmode not in VERIFYING_SSLMODES:
        return settings.db_sslmode
    if not settings.db_sslrootcert:
        raise ConfigError(f"DB_SSLROOTCERT: required when DB_SSLMODE={settings.db_sslmode}")
    context = ssl.create_default_context(cafile=settings.db_sslrootcert)
    context.check_hostname = settings.db_sslmode == "verify-full"
    return context


def _secret_engine(settings: Settings, secrets: SecretCredentials) -> AsyncEngine:
    connect_args = _asyncpg_args(settings)
    tls = db_ssl(settings)  # read the CA file once, not per connection

    async def connect() -> asyncpg.Connection:
        creds = await secrets.get()

        async def attempt(user: str, password: str) -> asyncpg.Connection:
            return await asyncpg.connect(
                host=settings.db_host,
                port=settings.db_port,
                database=settings.db_name,
                user=user,
                password=password,
                ssl=tls,
                **connect_args,
            )

        try:
            return await attempt(creds.username, creds.password)
        except AUTH_ERRORS:
            # The secret was rotated since we read it: read it again, once.
            fresh = await secrets.refresh(creds)
            return await attempt(fresh.username, fresh.password)

    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=connect, **_pool_args(settings)
    )
    return engine


def _sqlite_engine(path: str) -> AsyncEngine:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        connect_args={"timeout": 10},
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        # WAL lets readers and the single writer proceed together; busy_timeout waits for locks.
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=10000",
        ):
            cursor.execute(pragma)
        cursor.close()

    return engine


async def fetch(engine: AsyncEngine, query: str, *args: object) -> list[asyncpg.Record]:
    """One statement on a pooled connection's asyncpg connection (PostgreSQL only), for the
    hot path: asyncpg's prepared statements without SQLAlchemy's per-statement work (measured
    ~135 us of CPU each), and the connection taken from the pool itself rather than through an
    AsyncConnection (the same pool, checkout events and pre-ping; ~45 us of CPU instead of
    ~120 us). A connection found broken is dropped from the pool: 503."""
    try:
        pooled = await engine.raw_connection()
    except (*CONNECT_ERRORS, engine.dialect.loaded_dbapi.Error) as exc:
        # The pool's errors come unwrapped here (engine.connect() wraps the driver's in
        # DBAPIError).
        raise DatabaseUnavailable(type(exc).__name__) from exc
    try:
        return await pooled.driver_connection.fetch(query, *args)
    except LOST_ERRORS as exc:
        await greenlet_spawn(pooled.invalidate, exc)
        raise DatabaseUnavailable(type(exc).__name__) from exc
    finally:
        # Shielded: a cancelled request must still hand its connection back to the pool (which
        # may close it, an await: hence the greenlet).
        await asyncio.shield(greenlet_spawn(pooled.close))


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection; DatabaseUnavailable when none can be opened."""
    try:
        conn = await engine.connect()
    except CONNECT_ERRORS as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc
    try:
        yield conn
    finally:
        # Shielded: a cancelled request must still hand its connection back to the pool.
        await asyncio.shield(conn.close())


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, each statement its own transaction (no BEGIN/COMMIT round trips)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def transactional(engine: AsyncEngine) -> AsyncEngine:
    """The same pool with real transactions (migrations: all or nothing)."""
    level = "SERIALIZABLE" if engine.dialect.name == "sqlite" else "READ COMMITTED"
    return engine.execution_options(isolation_level=level)


async def ping(engine: AsyncEngine, timeout: float = 2.0) -> None:
    """Round trip to the database; raises when it is unreachable or not migrated yet (so a pod
    takes no traffic before the platform's migration Job has run)."""
    async with asyncio.timeout(timeout):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM alembic_version LIMIT 1"))
