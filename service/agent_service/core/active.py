"""The per-pod session count behind MAX_CONCURRENT_SESSIONS and MAX_SESSIONS_PER_KEY.

A session is active on this pod from its creation here, or from its last message served here,
until it ends or has been idle for `idle_seconds`. Session data lives in the database, so any
pod can serve any session; this count is about the work one pod is carrying, and a session ended
on another pod simply ages out here.

The per-key quota is counted the same way, per pod: it protects this pod's cap (one key can
hold at most `per_key` of its slots, so the others always find the rest), needs no round trip
and keeps working without Redis.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from enum import Enum


class Refusal(Enum):
    AT_CAPACITY = "at_capacity"
    QUOTA = "session_quota_exceeded"


class ActiveSessions:
    """Ordered by last activity (overall and per key), so expiry is a pop from the front."""

    def __init__(self, cap: int, idle_seconds: float, per_key: int | None = None) -> None:
        self.cap = cap
        self.per_key = per_key or cap
        self._idle = idle_seconds
        self._seen: OrderedDict[uuid.UUID, tuple[float, str]] = OrderedDict()
        self._by_owner: dict[str, OrderedDict[uuid.UUID, float]] = {}

    def _expire(self) -> None:
        horizon = time.monotonic() - self._idle
        while self._seen:
            oldest, (seen, _) = next(iter(self._seen.items()))
            if seen >= horizon:
                break
            self.discard(oldest)

    def count(self) -> int:
        self._expire()
        return len(self._seen)

    def held_by(self, owner: str) -> int:
        self._expire()
        return len(self._by_owner.get(owner, ()))

    def try_reserve(self, session_id: uuid.UUID, owner: str) -> Refusal | None:
        """Take a slot for a new session of `owner`; the reason when there is none."""
        if self.count() >= self.cap:
            return Refusal.AT_CAPACITY
        if len(self._by_owner.get(owner, ())) >= self.per_key:
            return Refusal.QUOTA
        self.touch(session_id, owner)
        return None

    def seconds_until_free(self, owner: str) -> float:
        """When `owner`'s least recently used session here stops counting (if nothing ends
        one before)."""
        owned = self._by_owner.get(owner)
        if not owned:
            return 0.0
        oldest = next(iter(owned.values()))
        return max(oldest + self._idle - time.monotonic(), 0.0)

    def touch(self, session_id: uuid.UUID, owner: str) -> None:
        now = time.monotonic()
        self._seen[session_id] = (now, owner)
        self._seen.move_to_end(session_id)
        owned = self._by_owner.setdefault(owner, OrderedDict())
        owned[session_id] = now
        owned.move_to_end(session_id)

    def discard(self, session_id: uuid.UUID) -> None:
        entry = self._seen.pop(session_id, None)
        if entry is None:
            return
        owned = self._by_owner.get(entry[1])
        if owned is not None:
            owned.pop(session_id, None)
            if not owned:
                del self._by_owner[entry[1]]
