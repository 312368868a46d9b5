"""Process-level state the probes and the stats report: start time, draining, request counts."""

from __future__ import annotations

import time


class Lifecycle:
    """Draining flag and request counters of this process (the course's stats summary)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self._monotonic_start = time.monotonic()
        self.draining = False
        self.request_count = 0
        self.error_count = 0  # responses >= 500
        self.client_error_count = 0  # responses 4xx

    def start_draining(self) -> None:
        """From now on /ready answers 503 and no new session starts; requests in flight finish."""
        self.draining = True

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self._monotonic_start

    def record(self, status: int) -> None:
        self.request_count += 1
        if status >= 500:
            self.error_count += 1
        elif status >= 400:
            self.client_error_count += 1

    @property
    def error_rate(self) -> float:
        return self.error_count / max(self.request_count, 1)
