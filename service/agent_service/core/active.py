"""The per-pod session count behind MAX_CONCURRENT_SESSIONS.

A session is active on this pod from its creation here, or from its last message served here,
until it ends or has been idle for `idle_seconds`. Session data lives in the database, so any
pod can serve any session; this count is about the work one pod is carrying, and a session ended
on another pod simply ages out here.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict


class ActiveSessions:
    """Ordered by last activity, so expiry is a pop from the front."""

    def __init__(self, cap: int, idle_seconds: float) -> None:
        self.cap = cap
        self._idle = idle_seconds
        self._seen: OrderedDict[uuid.UUID, float] = OrderedDict()

    def _expire(self) -> None:
        horizon = time.monotonic() - self._idle
        while self._seen:
            oldest, seen = next(iter(self._seen.items()))
            if seen >= horizon:
                break
            del self._seen[oldest]

    def count(self) -> int:
        self._expire()
        return len(self._seen)

    def try_reserve(self, session_id: uuid.UUID) -> bool:
        """Take a slot for a new session; False when the pod is at its cap."""
        if self.count() >= self.cap:
            return False
        self._seen[session_id] = time.monotonic()
        return True

    def touch(self, session_id: uuid.UUID) -> None:
        self._seen[session_id] = time.monotonic()
        self._seen.move_to_end(session_id)

    def discard(self, session_id: uuid.UUID) -> None:
        self._seen.pop(session_id, None)
