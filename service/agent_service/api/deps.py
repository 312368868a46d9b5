"""Dependencies: the caller's identity (API key + rate limit) and the services on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..core.chat import ChatService
from ..core.sessions import SessionService
from ..core.tasks import TaskService
from .errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="One of the keys in API_KEYS.")


async def identify(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> str:
    """The owner id of the presented API key (401 without a known key)."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <key>", challenge)
    owner = request.app.state.api_keys.identify(credentials.credentials)
    if owner is None:
        raise ApiError(401, "unauthorized", "unknown API key", challenge)
    return owner


async def authenticate(request: Request, owner: Annotated[str, Depends(identify)]) -> str:
    """The owner id, after the per-key rate limit (429 with Retry-After over it)."""
    await request.app.state.rate_limiter.check(owner)
    return owner


Owner = Annotated[str, Depends(authenticate)]
# Not rate limited here: for handlers that count the hit themselves (chat does it in the same
# Redis round trip as taking the session lock).
UnlimitedOwner = Annotated[str, Depends(identify)]

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
