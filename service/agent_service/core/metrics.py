"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's metrics; label children are cached because lookups sit on the hot path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.sessions_active = Gauge(
            "agent_sessions_active",
            "Sessions active on this pod (the per-pod cap counts these).",
            registry=self.registry,
        )
        self.tasks = Counter(
            "agent_tasks_total",
            "Background task events by priority and status.",
            ["priority", "status"],
            registry=self.registry,
        )
        self.cache = Counter(
            "agent_cache_requests_total",
            "Response cache lookups by result (hit, miss, error).",
            ["result"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Callable, Callable]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and record its duration."""
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = (
                self.requests.labels(method, route, str(status)).inc,
                self.duration.labels(method, route).observe,
            )
            self._children[key] = child
        child[0]()
        child[1](seconds)

    def track_sessions(self, count: Callable[[], int]) -> None:
        """Read the active-session gauge from the session tracker at scrape time."""
        self.sessions_active.set_function(count)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
