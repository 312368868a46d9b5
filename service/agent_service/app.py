"""The FastAPI app factory; the lifespan owns every pool and client (on app.state)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from . import __version__
from .api import errors, probes, sessions, stats, tasks
from .api.fastpath import ChatFastPath
from .api.middleware import RequestMiddleware
from .config import ConfigError, Settings, load_settings
from .core.active import ActiveSessions
from .core.auth import ApiKeys
from .core.cache import ResponseCache
from .core.chat import ChatService
from .core.lifecycle import Lifecycle
from .core.locks import SessionLocks
from .core.metrics import Metrics
from .core.models import create_backend
from .core.models.metered import MeteredModel
from .core.queue import LocalTaskQueue, RedisTaskQueue
from .core.ratelimit import RateLimiter
from .core.redis import RedisGate, create_redis
from .core.retention import build_purger, purging
from .core.sessions import SessionService
from .core.tasks import TaskExecutor, TaskService
from .local_worker import LocalWorker
from .metrics_server import start_metrics_server
from .migrate import upgrade
from .storage.chat import ChatRepository
from .storage.db import create_engine
from .storage.repositories import SessionRepository
from .storage.secrets import SecretCredentials
from .storage.task_repository import TaskRepository

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The metrics port first (a port that cannot be bound stops the start before any pool
    opens) and closed last; the services in between."""
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics

    async def render() -> bytes:
        return metrics.render()

    server = await start_metrics_server(settings.host, settings.metrics_port, render)
    try:
        async with services(app):
            yield
    finally:
        if server is not None:
            await server.stop()


@asynccontextmanager
async def services(app: FastAPI) -> AsyncIterator[None]:
    """Open pools and build the services; on shutdown drain, stop workers, close pools last."""
    state = app.state
    settings: Settings = state.settings
    secrets = state.secrets or (
        SecretCredentials(settings.db_secret_arn, settings.aws_region)
        if settings.db_secret_arn
        else None
    )
    engine = create_engine(settings, secrets)
    if settings.embedded:
        # Only the embedded SQLite default migrates itself; PostgreSQL is migrated by the
        # platform's Job (`python -m agent_service.migrate`) before the API rolls out.
        await upgrade(engine)
    redis = None
    if settings.redis_url:
        client = create_redis(
            settings.redis_url, settings.redis_timeout, settings.redis_max_connections
        )
        # The chat path's commands on one pipelined connection (core/redis_pipe.py).
        redis = RedisGate(client, pipelined=True)
    model = state.model or create_backend(settings)
    metrics: Metrics = state.metrics
    active = ActiveSessions(
        settings.max_concurrent_sessions, settings.session_idle_seconds, settings.session_quota
    )
    metrics.track_sessions(active.count)
    metrics.sessions_capacity.set(settings.max_concurrent_sessions)
    cache = ResponseCache(settings.cache_ttl, metrics, redis)
    session_repo = SessionRepository(engine)
    task_repo = TaskRepository(engine, lease_seconds=settings.task_reclaim_idle_seconds)
    queue = RedisTaskQueue(redis.client) if redis else LocalTaskQueue()

    state.engine, state.redis, state.active, state.cache = engine, redis, active, cache
    state.rate_limiter = RateLimiter(settings.rate_limit, redis)
    state.sessions = SessionService(
        session_repo, active, state.lifecycle, settings.agent_type, settings.pod_name
    )
    state.chat = ChatService(
        ChatRepository(engine),
        MeteredModel(model, metrics, chats=True),
        cache,
        SessionLocks(
            settings.session_lock_lease_seconds, settings.session_lock_max_hold_seconds, redis
        ),
        state.rate_limiter,
        active,
        settings.history_messages,
    )
    state.tasks = TaskService(task_repo, queue, metrics)
    local_worker = purger = None
    if isinstance(queue, LocalTaskQueue):
        executor = TaskExecutor(
            task_repo,
            MeteredModel(model, metrics),
            cache,
            metrics,
            worker=f"{settings.pod_name}-api",
            agent_type=settings.agent_type,
            max_attempts=settings.task_max_attempts,
        )
        local_worker = LocalWorker(
            queue, executor, settings.worker_concurrency, settings.shutdown_timeout_seconds
        )
        await local_worker.start()
        # The API is its own worker here, so it runs the retention job too.
        purger = build_purger(settings, engine)
    log.info(
        "agent service started",
        extra={
            "database": "sqlite" if settings.embedded else "postgresql",
            "redis": redis is not None,
            "model_backend": model.name,
            "model": model.model,
            "metrics_port": settings.metrics_port or None,
        },
    )
    try:
        async with purging(purger):
            yield
    finally:
        state.lifecycle.start_draining()
        if local_worker is not None:
            await local_worker.stop()
        await model.aclose()
        if redis is not None:
            await redis.close()
        await engine.dispose()
        log.info("agent service stopped")


def create_app(
    settings: Settings | None = None,
    *,
    model: object | None = None,
    secrets: SecretCredentials | None = None,
) -> FastAPI:
    """Build the app. `model` and `secrets` let tests inject a backend or a credentials source."""
    settings = settings or load_settings()
    if not settings.api_key_list:
        raise ConfigError("invalid environment: API_KEYS: required (comma-separated client keys)")
    app = FastAPI(
        title="agent-service",
        version=__version__,
        description="Sessions, chat and background tasks of the agent platform.",
        lifespan=lifespan,
        # No OpenTelemetry here (metrics are Prometheus'): skip FastAPI's per-request check for
        # configured OTel providers.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.lifecycle = Lifecycle()
    app.state.metrics = Metrics()
    app.state.api_keys = ApiKeys(settings.api_key_list)
    app.state.model = model
    app.state.secrets = secrets
    errors.install(app)
    for module in (probes, sessions, tasks, stats):
        app.include_router(module.router)
    app.state.route_methods = [
        (route.path_regex, route.methods)
        for module in (probes, sessions, tasks, stats)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]
    # Added first, so it runs inside the request middleware (api/fastpath.py).
    app.add_middleware(ChatFastPath, fastapi=app)
    app.add_middleware(
        RequestMiddleware,
        metrics=app.state.metrics,
        lifecycle=app.state.lifecycle,
        max_body=settings.max_request_bytes,
        body_timeout=settings.request_body_timeout_seconds,
    )
    return app
