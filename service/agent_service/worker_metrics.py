"""The worker's Prometheus metrics (served on METRICS_PORT by metrics_server.py).

Exactly the worker's names of the metric contract: tasks started, finished by outcome, their
duration and how many run now (this worker's), the reclaims it made, and the queue's depth and
oldest age per priority. The queue figures are the whole queue's, so every worker reports the
same values (aggregate them with max, not sum); they are measured at scrape time
(core/backlog.py) on the worker's event loop, without blocking it, within SAMPLE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import redis.asyncio as redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .core.backlog import Backlog, measure
from .core.queue import STREAMS
from .core.redis import REDIS_ERRORS, describe

log = logging.getLogger(__name__)

OUTCOMES = ("succeeded", "failed", "cancelled", "handed_back")
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SAMPLE_TIMEOUT = 2.0


class _QueueCollector(Collector):
    """agent_queue_depth and agent_queue_oldest_age_seconds from the last measurement; none
    (only their help and type) when it failed."""

    def __init__(self) -> None:
        self.backlog: dict[str, Backlog] | None = None

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "agent_queue_depth",
                "Task queue entries waiting (lag) plus pending (delivered, not acknowledged).",
                labels=["priority"],
            ),
            GaugeMetricFamily(
                "agent_queue_oldest_age_seconds",
                "Age of the oldest waiting or pending task queue entry (0 when empty).",
                labels=["priority"],
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth, age = self._families()
        for priority, backlog in (self.backlog or {}).items():
            depth.add_metric([priority], backlog.depth)
            age.add_metric([priority], backlog.oldest_age_seconds)
        yield depth
        yield age


class WorkerMetrics:
    """The worker's registry; a TaskObserver for its executor (core/tasks.py)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tasks_started = Counter(
            "agent_worker_tasks_started_total",
            "Tasks this worker claimed and started, by priority.",
            ["priority"],
            registry=self.registry,
        )
        self.tasks_finished = Counter(
            "agent_worker_tasks_finished_total",
            "Task runs of this worker that ended, by priority and outcome (succeeded, failed, "
            "cancelled, handed_back: back to the queue without a result).",
            ["priority", "outcome"],
            registry=self.registry,
        )
        self.task_duration = Histogram(
            "agent_worker_task_duration_seconds",
            "Task run duration on this worker, from start to outcome, by priority.",
            ["priority"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.running = 0
        self.tasks_running = Gauge(
            "agent_worker_tasks_running",
            "Tasks running on this worker now.",
            registry=self.registry,
        )
        self.tasks_running.set_function(lambda: self.running)
        self.reclaims = Counter(
            "agent_worker_reclaims_total",
            "Queue entries this worker took over from dead consumers (XAUTOCLAIM).",
            registry=self.registry,
        )
        self.queue = _QueueCollector()
        self.registry.register(self.queue)
        # Every child made now: each series exists from the start (at 0), so rates and ratios
        # see the first event, and counting a task costs no label lookup.
        self._started = {p: self.tasks_started.labels(p).inc for p in STREAMS}
        self._observe = {p: self.task_duration.labels(p).observe for p in STREAMS}
        self._finished = {
            (p, o): self.tasks_finished.labels(p, o).inc for p in STREAMS for o in OUTCOMES
        }

    def started(self, priority: str) -> None:
        self.running += 1
        self._started[priority]()

    def finished(self, priority: str, outcome: str, seconds: float) -> None:
        self.running -= 1
        self._finished[priority, outcome]()
        self._observe[priority](seconds)

    def reclaimed(self, count: int) -> None:
        if count:
            self.reclaims.inc(count)

    async def render(self, client: redis.Redis) -> bytes:
        """Measure the queue, then the text exposition format of everything."""
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT):
                backlog = await measure(client)
        except REDIS_ERRORS as exc:
            log.warning("cannot measure the task queue", extra={"error": describe(exc)})
            backlog = None
        self.queue.backlog = backlog
        return generate_latest(self.registry)
