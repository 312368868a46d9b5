"""Liveness and readiness (no authentication: the kubelet calls these on the pod port).
Prometheus metrics are not here: they have a port of their own (metrics_server.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..storage.db import ping
from .schemas import Capacity, DependencyCheck, Health, Ready

router = APIRouter(tags=["probes"])
_HEALTH = Health(status="ok")
DEGRADED_ABOVE = 0.9  # the course's threshold: above 90% of the session cap


@router.get("/health", response_model=Health, summary="Liveness (no dependencies)")
async def health() -> Health:
    return _HEALTH


async def _check(coro: Awaitable[object], timeout: float) -> DependencyCheck:
    try:
        async with asyncio.timeout(timeout):
            await coro
    except Exception as exc:
        return DependencyCheck(status="down", error=type(exc).__name__)
    return DependencyCheck(status="up")


@router.get(
    "/ready",
    response_model=Ready,
    summary="Readiness: PostgreSQL, Redis, draining, capacity",
    responses={503: {"model": Ready, "description": "Not ready or draining"}},
)
async def ready(request: Request) -> JSONResponse:
    """503 when draining or the database is down. Redis down or more than 90% of the session
    cap in use is `degraded` but still 200: chat keeps working without Redis, and taking a
    full pod out of rotation would only move its chats elsewhere and flap."""
    state = request.app.state
    checks = {"database": await _check(ping(state.engine, timeout=2.0), 2.5)}
    if state.redis is None:
        checks["redis"] = DependencyCheck(status="disabled")
    else:
        checks["redis"] = await _check(state.redis.client.ping(), 2.0)
        if checks["redis"].status == "up":
            state.redis.succeeded()
    active = state.active.count()
    capacity = Capacity(
        active_sessions=active,
        max_sessions=state.active.cap,
        utilization=round(active / state.active.cap, 4),
    )
    if state.lifecycle.draining:
        status, code = "draining", 503
    elif checks["database"].status == "down":
        status, code = "not_ready", 503
    elif checks["redis"].status == "down" or capacity.utilization > DEGRADED_ABOVE:
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    body = Ready(status=status, checks=checks, capacity=capacity)
    return JSONResponse(body.model_dump(mode="json"), status_code=code)
