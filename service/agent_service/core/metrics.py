"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# No `*_created` series beside every counter and histogram: nothing reads them, and they would
# double the series the scraper stores (process-wide: the worker's registry too).
disable_created_metrics()

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A model call takes up to MODEL_TIMEOUT x (MODEL_MAX_RETRIES + 1) plus backoff: 90 s+ by default.
_MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
MODEL_OUTCOMES = ("ok", "error", "timeout")


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
        self.sessions_capacity = Gauge(
            "agent_sessions_capacity",
            "The per-pod session cap (MAX_CONCURRENT_SESSIONS).",
            registry=self.registry,
        )
        # A plain int the model wrapper bumps (no lock on the hot path), read at scrape time.
        self.chats_waiting = 0
        self.chats_in_flight = Gauge(
            "agent_chats_in_flight",
            "Chat requests waiting on the model now (a stream: until its last chunk).",
            registry=self.registry,
        )
        self.chats_in_flight.set_function(lambda: self.chats_waiting)
        self.model_requests = Counter(
            "agent_model_requests_total",
            "Model calls (their retries included) by backend and outcome (ok, error, timeout).",
            ["backend", "outcome"],
            registry=self.registry,
        )
        self.model_duration = Histogram(
            "agent_model_request_duration_seconds",
            "Model call duration by backend (a stream: until its last chunk).",
            ["backend"],
            buckets=_MODEL_BUCKETS,
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

    def model_recorder(self, backend: str) -> Callable[[str, float], None]:
        """A function recording one call of `backend` (outcome, seconds); its label children
        are made now, so every outcome is exported from the start (at 0) and a call costs no
        label lookup."""
        counts = {o: self.model_requests.labels(backend, o).inc for o in MODEL_OUTCOMES}
        observe = self.model_duration.labels(backend).observe

        def record(outcome: str, seconds: float) -> None:
            counts[outcome]()
            observe(seconds)

        return record

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
