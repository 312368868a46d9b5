"""Session lifecycle: create (within the per-pod cap and the key's quota), read, end, purge,
list messages."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row

from ..storage.repositories import SessionRepository
from .active import ActiveSessions, Refusal
from .errors import Conflict, NotFound, RateLimited, Unavailable
from .lifecycle import Lifecycle

CAPACITY_RETRY_AFTER = 10


class SessionService:
    def __init__(
        self,
        repo: SessionRepository,
        active: ActiveSessions,
        lifecycle: Lifecycle,
        agent_type: str,
        pod: str,
    ) -> None:
        self._repo = repo
        self._active = active
        self._lifecycle = lifecycle
        self._agent_type = agent_type
        self._pod = pod

    async def create(self, owner: str, user_id: str | None, meta: dict[str, Any] | None) -> Row:
        if self._lifecycle.draining:
            raise Unavailable(
                "this instance is shutting down; retry", code="draining", retry_after=1
            )
        session_id = uuid.uuid4()
        # Reserve before the insert: no await between the check and the reservation.
        refused = self._active.try_reserve(session_id, owner)
        if refused is Refusal.AT_CAPACITY:
            raise Unavailable(
                f"this instance is at its limit of {self._active.cap} concurrent sessions",
                code="at_capacity",
                retry_after=CAPACITY_RETRY_AFTER,
            )
        if refused is Refusal.QUOTA:
            raise RateLimited(
                f"this API key already has {self._active.per_key} active sessions on this "
                "instance (MAX_SESSIONS_PER_KEY); end one (DELETE /v1/sessions/{id}) or retry "
                "later",
                code=refused.value,
                retry_after=max(self._active.seconds_until_free(owner), 1.0),
            )
        try:
            return await self._repo.create(
                session_id=session_id,
                owner=owner,
                agent_type=self._agent_type,
                user_id=user_id,
                meta=meta,
                pod=self._pod,
            )
        except BaseException:
            self._active.discard(session_id)
            raise

    async def get(self, owner: str, session_id: uuid.UUID) -> Row:
        row = await self._repo.get(session_id, owner)
        if row is None:
            raise NotFound("session not found")
        return row

    async def end(self, owner: str, session_id: uuid.UUID) -> Row:
        row = await self._repo.end(session_id, owner)
        if row is None:
            await self.get(owner, session_id)  # 404 when unknown or another key's
            self._active.discard(session_id)
            raise Conflict("session already ended", code="session_ended")
        self._active.discard(session_id)
        return row

    async def purge(self, owner: str, session_id: uuid.UUID) -> None:
        """Delete the session and its messages (ended or not); 404 when unknown."""
        if not await self._repo.purge(session_id, owner):
            raise NotFound("session not found")
        self._active.discard(session_id)

    async def messages(
        self, owner: str, session_id: uuid.UUID, after: int | None, limit: int
    ) -> list[Row]:
        rows = await self._repo.list_messages(session_id, owner, after, limit)
        if rows is None:
            raise NotFound("session not found")
        return rows
