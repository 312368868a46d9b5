"""The request middleware (pure ASGI, one layer, cheap): request id, body-size and body-time
limits, `Connection: close` while draining, metrics, the JSON access line, and a last-resort
500 that never shows a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.lifecycle import Lifecycle
from ..core.metrics import Metrics

log = logging.getLogger("agent_service.access")
errors = logging.getLogger("agent_service.errors")

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INTERNAL = json.dumps({"error": {"code": "internal_error", "message": "internal error"}}).encode()
_TOO_LARGE = json.dumps(
    {"error": {"code": "payload_too_large", "message": "request body too large"}}
).encode()
_CLOSE = (b"connection", b"close")


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        lifecycle: Lifecycle,
        max_body: int,
        body_timeout: float,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        request_id = incoming if incoming and _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        rid_header = (b"x-request-id", request_id.encode())
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [*message.get("headers", ()), rid_header]
                if self.lifecycle.draining:
                    # Clients (and the load balancer) reconnect, to a pod that stays, instead
                    # of reusing a connection this one is about to close.
                    headers.append(_CLOSE)
                message["headers"] = headers
            await send(message)

        async def send_plain(code: int, body: bytes) -> None:
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        received = 0
        body_deadline = asyncio.get_running_loop().time() + self.body_timeout
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # Afterwards the app only waits for a disconnect (a stream): no deadline.
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                # A client that never finishes its body must not hold the request (and the
                # shutdown) open; the rest of the body is unread, so the connection closes.
                raise HTTPException(
                    408,
                    "request body not received within REQUEST_BODY_TIMEOUT_SECONDS",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # FastAPI passes HTTPException through body parsing untouched.
                    raise HTTPException(
                        413, "request body too large", headers={"Connection": "close"}
                    )
            return message

        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await send_plain(413, _TOO_LARGE)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception:
            errors.exception(
                "unhandled error", extra={"request_id": request_id, "path": scope["path"]}
            )
            if not started:
                await send_plain(500, _INTERNAL)
            status = 500
        finally:
            duration = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.observe_request(method, template, status, duration)
            self.lifecycle.record(status)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
