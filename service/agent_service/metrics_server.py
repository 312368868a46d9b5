"""Prometheus metrics on a port of their own (METRICS_PORT), never on the public port.

The load balancer's target group reaches only PORT, so nothing outside the cluster can read
the metrics; the scraper reaches METRICS_PORT on the pod. A tiny aiohttp server (aiohttp is
already the model client's library) on the process's own event loop: `GET /metrics`, anything
else 404. The API starts and stops it with its lifespan, the worker with its loop; a scrape in
flight at shutdown gets at most SHUTDOWN_SECONDS, so it never holds a graceful shutdown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import ConfigError
from .core.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

PATH = "/metrics"
SHUTDOWN_SECONDS = 1.0

Render = Callable[[], Awaitable[bytes]]


class MetricsServer:
    """`GET /metrics` on host:port, answered by `render` (the text exposition format)."""

    def __init__(self, host: str, port: int, render: Render) -> None:
        self.host = host
        self.port = port
        self._render = render
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=await self._render(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        """Listen; a port that cannot be bound is a ConfigError naming METRICS_PORT."""
        app = web.Application()
        app.router.add_get(PATH, self._metrics)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConfigError(
                f"METRICS_PORT={self.port}: cannot listen on {self.host}:{self.port} "
                f"({reason}); choose a free port, or 0 to serve no metrics"
            ) from None
        self._runner = runner
        log.info("metrics served", extra={"port": self.port, "path": PATH})

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


async def start_metrics_server(host: str, port: int, render: Render) -> MetricsServer | None:
    """A started server, or None when `port` is 0 (metrics disabled)."""
    if not port:
        return None
    server = MetricsServer(host, port, render)
    await server.start()
    return server
