"""The course's JSON summary of this pod."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from .deps import Owner
from .errors import COMMON_ERRORS
from .probes import DEGRADED_ABOVE
from .schemas import CacheStats, ModelInfo, Stats

router = APIRouter(prefix="/v1", tags=["stats"], responses=COMMON_ERRORS)


@router.get("/stats", response_model=Stats, summary="Uptime, requests, errors, sessions, cache")
async def stats(request: Request, _: Owner) -> Stats:
    state = request.app.state
    life, active, cache = state.lifecycle, state.active, state.cache
    count = active.count()
    if life.draining:
        status = "draining"
    elif count > active.cap * DEGRADED_ABOVE:
        status = "degraded"
    else:
        status = "healthy"
    return Stats(
        service_name="agent-service",
        agent_type=state.settings.agent_type,
        pod=state.settings.pod_name,
        status=status,
        uptime_seconds=round(life.uptime_seconds, 3),
        request_count=life.request_count,
        error_count=life.error_count,
        client_error_count=life.client_error_count,
        error_rate=round(life.error_rate, 6),
        active_sessions=count,
        max_sessions=active.cap,
        cache=CacheStats(
            enabled=cache.enabled,
            backend="redis" if state.redis is not None else "memory",
            ttl_seconds=cache.ttl,
            hits=cache.hits,
            misses=cache.misses,
            errors=cache.errors,
            hit_rate=round(cache.hit_rate, 6),
        ),
        model=ModelInfo(backend=state.chat.model.name, model=state.chat.model.model),
        timestamp=time.time(),
    )
