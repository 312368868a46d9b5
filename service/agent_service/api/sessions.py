"""Sessions and chat."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Row
from starlette.types import Receive, Scope, Send

from ..core.chat import ChatResult, ChatService, ChatTurn
from ..core.errors import ServiceError
from ..core.models import ModelError
from ..storage.chat import StoredMessage
from .deps import Chat, Owner, Sessions, UnlimitedOwner
from .errors import BODY_ERRORS, COMMON_ERRORS, ERROR, dependency_failure
from .keepalive import keepalive
from .render import dumps, json_response
from .schemas import (
    MAX_MESSAGE_ID,
    ChatReply,
    Message,
    MessageCreate,
    MessagePage,
    Session,
    SessionCreate,
    SessionEnded,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=COMMON_ERRORS)
NOT_FOUND = {404: {**ERROR, "description": "Unknown session"}}
ID_ERRORS = {422: {**ERROR, "description": "Invalid id"}}


def session_out(row: Row) -> Session:
    return Session(
        id=row.id,
        agent_type=row.agent_type,
        status="ended" if row.ended_at else "active",
        user_id=row.user_id,
        metadata=row.meta,
        created_at=row.created_at,
        ended_at=row.ended_at,
        message_count=row.message_count,
    )


def message_out(row: Row) -> Message:
    return Message(id=row.id, role=row.role, content=row.content, created_at=row.created_at)


def _message(m: StoredMessage) -> dict:
    return {"id": m.id, "role": m.role, "content": m.content, "created_at": m.created_at}


def reply_out(session_id: uuid.UUID, result: ChatResult, chat: ChatService) -> dict:
    """A ChatReply, as a dict (see api/render.py)."""
    return {
        "session_id": session_id,
        "message": _message(result.message),
        "reply": _message(result.reply),
        "model": {"backend": chat.model.name, "model": chat.model.model},
        "cached": result.cached,
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Session,
    responses=BODY_ERRORS,
    summary="Start a session (503 with Retry-After when this pod is at its session cap)",
)
async def create_session(
    owner: Owner, sessions: Sessions, response: Response, body: SessionCreate | None = None
) -> Session:
    body = body or SessionCreate()
    row = await sessions.create(owner, body.user_id, body.metadata)
    response.headers["Location"] = f"/v1/sessions/{row.id}"
    return session_out(row)


@router.get("/{session_id}", response_model=Session, responses={**NOT_FOUND, **ID_ERRORS})
async def get_session(session_id: uuid.UUID, owner: Owner, sessions: Sessions) -> Session:
    return session_out(await sessions.get(owner, session_id))


@router.delete(
    "/{session_id}",
    response_model=SessionEnded,
    responses={
        **NOT_FOUND,
        **ID_ERRORS,
        204: {"description": "Purged (`purge=true`): the session and its messages are deleted"},
        409: {**ERROR, "description": "Session already ended"},
    },
    summary="End a session (its history stays readable), or delete it with its history",
)
async def end_session(
    session_id: uuid.UUID,
    owner: Owner,
    sessions: Sessions,
    purge: Annotated[
        bool,
        Query(
            description="Delete the session and all its messages now, ended or not (204); "
            "they cannot be read again."
        ),
    ] = False,
) -> SessionEnded | Response:
    if purge:
        await sessions.purge(owner, session_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    row = await sessions.end(owner, session_id)
    return SessionEnded(
        id=row.id,
        status="ended",
        duration_seconds=round((row.ended_at - row.created_at).total_seconds(), 3),
        message_count=row.message_count,
        ended_at=row.ended_at,
    )


def _sse(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _error_event(code: str, message: str) -> bytes:
    return _sse("error", {"error": {"code": code, "message": message}})


async def _events(turn: ChatTurn, chat: ChatService) -> AsyncIterator[bytes]:
    """The stream's events. Headers (200) are gone once it starts, so a failure travels as
    its last event: an `error` with the code the JSON answer would have had."""
    try:
        async for item in chat.stream(turn):
            if isinstance(item, ChatResult):
                yield _sse("done", reply_out(turn.session_id, item, chat))
            else:
                yield _sse("token", {"delta": item})
    except (ModelError, ServiceError) as exc:
        yield _error_event(exc.code, str(exc))
    except Exception as exc:
        failure = dependency_failure(exc)
        if failure is None:
            # Unexpected: the client still learns the stream failed; the middleware logs it
            # and counts a 500.
            yield _error_event("internal_error", "internal error")
            raise
        log.warning("stream failed", extra={"code": failure[0], "error": type(exc).__name__})
        yield _error_event(*failure)


class TurnStream(StreamingResponse):
    """An SSE response that frees the session whatever happens to the response (a client
    gone before the first event never runs the generator's own cleanup), with a keep-alive
    comment after every `keepalive_seconds` of silence (api/keepalive.py; 0: none)."""

    def __init__(self, turn: ChatTurn, chat: ChatService, keepalive_seconds: float = 0.0) -> None:
        super().__init__(
            _events(turn, chat),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._turn, self._chat = turn, chat
        self._keepalive = keepalive_seconds

    async def stream_response(self, send: Send) -> None:
        async with keepalive(send, self._keepalive) as busy_send:
            await super().stream_response(busy_send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._chat.abandon(self._turn)


@router.post(
    "/{session_id}/messages",
    response_model=ChatReply,
    responses={
        **NOT_FOUND,
        **BODY_ERRORS,
        200: {
            "description": "The reply; with `Accept: text/event-stream`, Server-Sent Events: "
            "`token` events `{delta}`, then `done` with this body (or `error`), and a comment "
            "`: keep-alive` after every SSE_KEEPALIVE_SECONDS without an event.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        409: {**ERROR, "description": "A message is already running, or the session ended"},
        502: {**ERROR, "description": "The model backend failed"},
        504: {**ERROR, "description": "The model backend timed out"},
    },
    summary="Send a message; the model sees the session's recent history",
)
async def send_message(
    session_id: uuid.UUID,
    body: MessageCreate,
    owner: UnlimitedOwner,
    chat: Chat,
    request: Request,
) -> Response:
    turn = await chat.begin(owner, session_id, body.content)
    if "text/event-stream" in request.headers.get("accept", ""):
        return TurnStream(turn, chat, request.app.state.settings.sse_keepalive_interval)
    return json_response(reply_out(session_id, await chat.reply(turn), chat))


@router.get(
    "/{session_id}/messages",
    response_model=MessagePage,
    responses={**NOT_FOUND, **ID_ERRORS},
    summary="The session's messages, oldest first",
)
async def list_messages(
    session_id: uuid.UUID,
    owner: Owner,
    sessions: Sessions,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_MESSAGE_ID, description="Message id to continue after")
    ] = None,
) -> MessagePage:
    rows = await sessions.messages(owner, session_id, after, limit + 1)
    items = [message_out(r) for r in rows[:limit]]
    return MessagePage(items=items, next_after=items[-1].id if len(rows) > limit else None)
