"""The HTTP server: uvicorn (uvloop + httptools) with the connection timeouts it lacks and a
drain period on SIGTERM.

Measured with uvicorn 0.54 (h11 and httptools alike): `timeout_keep_alive` only starts after
a response, so a connection that sends nothing, or stops in the middle of its headers or body,
is held forever, and one stuck in its body holds the shutdown for the whole graceful timeout.
Here:

- a connection that has sent nothing is idle: closed after KEEP_ALIVE_TIMEOUT_SECONDS, as
  between requests (above the load balancer's idle timeout, so the balancer closes first);
- a request's headers must be complete within REQUEST_HEADER_TIMEOUT_SECONDS of its first
  byte, else 408 and the connection closes;
- its body within REQUEST_BODY_TIMEOUT_SECONDS of the headers (the request middleware answers
  a JSON 408); a response sent before the body was read closes the connection, so dripping
  the rest of a body cannot hold it either.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
from asyncio import TimerHandle, Transport
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import Settings
from .core.lifecycle import Lifecycle

log = logging.getLogger("agent_service")
GC_THRESHOLD = 20_000

_TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "code": "request_timeout",
            "message": "request headers not received within REQUEST_HEADER_TIMEOUT_SECONDS",
        }
    }
).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with idle, header and unread-body bounds (module doc)."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: TimerHandle | None = None

    def _arm_idle(self) -> None:
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # cancels the idle timer
        between_requests = self.cycle is None or self.cycle.response_complete
        if (
            between_requests
            and self._header_timer is None
            and self.timeout_keep_alive_task is None
            and not self.transport.is_closing()
        ):
            self._arm_idle()  # bytes that start no request (stray CRLFs) are still idle

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self._header_timeout, self._headers_timed_out)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body:
            # Answered before its body was read (413, 404...): the rest of the body is still
            # on the connection, which cannot carry another request.
            self.transport.close()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM drains before it stops; a second one stops now."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_seconds: float):
        super().__init__(config)
        self._lifecycle = lifecycle
        self._drain_seconds = drain_seconds
        self._drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_deadline is None and self._drain_seconds > 0:
            self._lifecycle.start_draining()
            self._drain_deadline = self._drain_seconds
            log.info("draining", extra={"signal": sig, "seconds": self._drain_seconds})
            return
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        # What startup built (modules, routes, pools) lives as long as the process: take it out
        # of the collector's sight, and collect the young generation less often (a request
        # allocates hundreds of objects; at the default threshold of 700 the collector ran
        # every few requests, ~9% of a chat's CPU).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)

    async def on_tick(self, counter: int) -> bool:
        # uvicorn ticks every 0.1 s; count the drain period down here, then stop.
        if self._drain_deadline is not None and not self.should_exit:
            self._drain_deadline -= 0.1
            if self._drain_deadline <= 0:
                self.should_exit = True
        return await super().on_tick(counter)


def build_server(app: Any, settings: Settings, lifecycle: Lifecycle) -> DrainingServer:
    """The API's server, configured from the settings."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=functools.partial(  # type: ignore[arg-type]
            BoundedHttpToolsProtocol, header_timeout=settings.request_header_timeout_seconds
        ),
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds) or None,
        timeout_keep_alive=settings.keep_alive_timeout_seconds,  # type: ignore[arg-type]
    )
    return DrainingServer(config, lifecycle, settings.shutdown_drain_seconds)
