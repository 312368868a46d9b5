"""The chat hot path, `POST /v1/sessions/{id}/messages`, served without FastAPI's per-request
machinery (routing through every route, dependency solving, pydantic body validation, the
exception middlewares: ~40% of a chat's CPU, measured with py-spy).

Only a request that plainly passes every check FastAPI would make is served here: a canonical
session id, `Authorization: Bearer <known key>`, `Content-Type: application/json` and a JSON
object with exactly a `content` string of 1 to MAX_MESSAGE_CHARS characters and no NUL. Any
other request, or any doubt, goes on to FastAPI with its body replayed, so every refusal (400,
401, 404, 422...) is still FastAPI's own answer. The route declared in api/sessions.py stays the
documented one (OpenAPI), and both paths run the same code from there on: `chat.begin`, then
`TurnStream` or `reply_out`; failures get the app's own exception handlers (api/errors.py).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import sessions
from .render import dumps
from .schemas import MAX_MESSAGE_CHARS

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PATH = re.compile(rf"/v1/sessions/({_UUID})/messages")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class ChatFastPath:
    """Pure ASGI, between the request middleware (ids, limits, metrics, access log: they apply
    to both paths) and FastAPI's exception middleware."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self.route = next(
            r
            for r in sessions.router.routes
            if isinstance(r, APIRoute)
            and r.path == "/v1/sessions/{session_id}/messages"
            and "POST" in r.methods
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        owner = _owner(self.fastapi.state, headers.get(b"authorization"))
        received: list[Message] = []
        try:
            if owner is not None and headers.get(b"content-type") == b"application/json":
                received = await _read_body(receive)
                content = _content(received)
                if content is not None:
                    scope["route"] = self.route
                    await self._chat(scope, receive, send, owner, match[1], content, headers)
                    return
        except Exception as exc:
            await self._failed(scope, receive, send, exc)
            return
        await self.app(scope, _replay(received, receive) if received else receive, send)

    async def _chat(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        owner: str,
        session_id: str,
        content: str,
        headers: dict[bytes, bytes],
    ) -> None:
        state = self.fastapi.state
        chat = state.chat
        sid = uuid.UUID(session_id)
        turn = await chat.begin(owner, sid, content)
        if b"text/event-stream" in headers.get(b"accept", b""):
            stream = sessions.TurnStream(turn, chat, state.settings.sse_keepalive_interval)
            await stream(scope, receive, send)
            return
        payload = dumps(sessions.reply_out(sid, await chat.reply(turn), chat))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(payload)).encode()), *_JSON_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _failed(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """The app's handler for `exc` (as FastAPI's exception middleware would pick it)."""
        handlers: dict[Any, Any] = self.fastapi.exception_handlers
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        if handler is None:
            raise exc
        response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers this path reads, each the first of its name as Starlette reads it; a
    repeated Authorization or Content-Type is left to FastAPI (empty here)."""
    out: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in (b"authorization", b"content-type", b"accept"):
            if name not in out:
                out[name] = value
            elif name != b"accept":
                out[name] = b""
    return out


def _owner(state: Any, authorization: bytes | None) -> str | None:
    """The owner of a plain `Bearer <key>` with a known key; None for anything else."""
    if not authorization or not authorization.startswith(b"Bearer "):
        return None
    key = authorization[7:]
    if not key or key.strip() != key or b" " in key:
        return None
    return state.api_keys.identify(key.decode("latin-1"))


async def _read_body(receive: Receive) -> list[Message]:
    """The request's messages up to the end of its body (or a disconnect)."""
    received = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return received


def _content(received: list[Message]) -> str | None:
    """The message's text when the body is complete and plainly a valid MessageCreate."""
    if received[-1]["type"] != "http.request":
        return None
    try:
        data = orjson.loads(b"".join(m.get("body", b"") for m in received))
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    content = data.get("content")
    if type(content) is not str or not 0 < len(content) <= MAX_MESSAGE_CHARS or "\x00" in content:
        return None
    return content


def _replay(received: list[Message], receive: Receive) -> Receive:
    """`receive` handing out the messages already read first."""
    pending = list(reversed(received))

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
