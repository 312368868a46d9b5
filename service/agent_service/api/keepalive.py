"""SSE keep-alive: a comment whenever a stream has been silent for SSE_KEEPALIVE_SECONDS.

A load balancer closes a connection that carries no bytes for its idle timeout (the ALB's is
60 s by default), and a slow model can be silent longer than that before its first token or
between two (MODEL_TIMEOUT per attempt, with retries). A comment line (`: keep-alive`) is
ignored by every SSE client but keeps the connection busy.

It works on the response's `send`, beside the stream: the events are still made in the
request's task, each send costs a clock read, and one timer per stream (rearmed at most once
per interval) writes a comment only when nothing was sent for a whole interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.types import Message, Send

log = logging.getLogger(__name__)

KEEPALIVE = b": keep-alive\n\n"
_COMMENT: Message = {"type": "http.response.body", "body": KEEPALIVE, "more_body": True}


class _KeepAliveSend:
    """`send`, plus a comment after every `every` seconds in which it sent nothing."""

    def __init__(self, send: Send, every: float) -> None:
        self._send = send
        self._every = every
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._comment: asyncio.Task | None = None
        self._open = False  # between the response's start and its last body message

    async def __call__(self, message: Message) -> None:
        if self._comment is not None:
            # A comment is being written (the client reads slowly): the event goes after it.
            await asyncio.wait([self._comment])
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.close()
        await self._send(message)
        self._last = self._loop.time()
        if message["type"] == "http.response.start":
            self._open = True
            self._arm(self._every)

    def _arm(self, delay: float) -> None:
        self._timer = self._loop.call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        if not self._open:
            return
        quiet = self._loop.time() - self._last
        if quiet < self._every:  # something was sent meanwhile
            self._arm(self._every - quiet)
        else:
            self._comment = self._loop.create_task(self._write_comment())

    async def _write_comment(self) -> None:
        try:
            await self._send(_COMMENT)
        except Exception as exc:
            # The client is gone: the stream's own next send finds out and ends the response.
            log.debug("keep-alive not sent", extra={"error": type(exc).__name__})
            return
        finally:
            self._comment = None
        self._last = self._loop.time()
        if self._open:
            self._arm(self._every)

    def close(self) -> None:
        """No comment from now on."""
        self._open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._comment is not None:
            self._comment.cancel()


@contextlib.asynccontextmanager
async def keepalive(send: Send, every: float) -> AsyncIterator[Send]:
    """A `send` that keeps the stream busy (`send` itself when `every` is 0)."""
    if every <= 0:
        yield send
        return
    wrapped = _KeepAliveSend(send, every)
    try:
        yield wrapped
    finally:
        wrapped.close()
