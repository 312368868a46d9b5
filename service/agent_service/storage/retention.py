"""The retention job's statements: delete sessions that ended before a cutoff, with their
messages, in bounded batches.

Messages go first, at most `batch` rows per statement (a session may hold thousands), then the
sessions left without messages. Rows are picked with FOR UPDATE SKIP LOCKED, so several workers
purging at once take disjoint batches instead of waiting on each other; every statement commits
on its own, so locks are held for one batch only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import autocommit, connect
from .tables import messages, sessions

_EXPIRED = sessions.c.ended_at < bindparam("cutoff")

_MESSAGES = delete(messages).where(
    messages.c.id.in_(
        select(messages.c.id)
        .join(sessions, sessions.c.id == messages.c.session_id)
        .where(_EXPIRED)
        .limit(bindparam("batch"))
        .with_for_update(of=messages, skip_locked=True)
        .scalar_subquery()
    )
)

_SESSIONS = delete(sessions).where(
    sessions.c.id.in_(
        select(sessions.c.id)
        .where(_EXPIRED, ~exists().where(messages.c.session_id == sessions.c.id))
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
)


class RetentionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)

    async def purge_ended(self, cutoff: datetime, batch: int) -> tuple[int, int]:
        """One batch: up to `batch` messages of sessions ended before `cutoff`, then up to
        `batch` of those sessions that have no message left. Returns both counts."""
        params = {"cutoff": cutoff, "batch": batch}
        async with connect(self._engine) as conn:
            purged_messages = (await conn.execute(_MESSAGES, params)).rowcount
            purged_sessions = (await conn.execute(_SESSIONS, params)).rowcount
        return purged_messages, purged_sessions
