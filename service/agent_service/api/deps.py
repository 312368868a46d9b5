"""Dependencies: the caller's identity (API key + rate limit) and the services on app.state."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..core.chat import ChatService
from ..core.sessions import SessionService
from ..core.tasks import TaskService
from .errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="One of the keys in API_KEYS.")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> str:
    """The owner id of the presented API key, after the per-key rate limit."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <key>", challenge)
    state = request.app.state
    owner = state.api_keys.identify(credentials.credentials)
    if owner is None:
        raise ApiError(401, "unauthorized", "unknown API key", challenge)
    retry_after = await state.rate_limiter.hit(owner)
    if retry_after is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {state.settings.rate_limit} exceeded",
            {"Retry-After": str(math.ceil(retry_after))},
        )
    return owner


Owner = Annotated[str, Depends(authenticate)]

# Dependencies are `async def`: FastAPI runs plain `def` ones in a thread pool, a costly hop.


async def _sessions(request: Request) -> SessionService:
    return request.app.state.sessions


async def _chat(request: Request) -> ChatService:
    return request.app.state.chat


async def _tasks(request: Request) -> TaskService:
    return request.app.state.tasks


Sessions = Annotated[SessionService, Depends(_sessions)]
Chat = Annotated[ChatService, Depends(_chat)]
Tasks = Annotated[TaskService, Depends(_tasks)]
