"""Repositories: the SQL statements of sessions and messages (the chat path's are in chat.py,
tasks' in task_repository.py).

Each statement commits on its own (autocommit): every write here is a single statement, so this
is as atomic as a transaction and saves the BEGIN and COMMIT round trips on the hot path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import autocommit, connect
from .tables import messages, sessions


def utcnow() -> datetime:
    return datetime.now(UTC)


# Computed, not stored: keeps storing a chat exchange to one statement.
_message_count = (
    select(func.count())
    .where(messages.c.session_id == sessions.c.id)
    .correlate(sessions)
    .scalar_subquery()
    .label("message_count")
)


class SessionRepository:
    """Sessions and their messages, always scoped to the owning API key (the chat path's
    statements are in storage/chat.py)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)

    async def create(
        self,
        *,
        session_id: uuid.UUID,
        owner: str,
        agent_type: str,
        user_id: str | None,
        meta: dict[str, Any] | None,
        pod: str,
    ) -> Any:
        values = {
            "id": session_id,
            "owner": owner,
            "agent_type": agent_type,
            "user_id": user_id,
            "meta": meta,
            "created_by": pod,
            "created_at": utcnow(),
            "ended_at": None,
        }
        async with connect(self._engine) as conn:
            await conn.execute(insert(sessions).values(values))
        return record_of({**values, "message_count": 0})

    async def get(self, session_id: uuid.UUID, owner: str) -> Row | None:
        async with connect(self._engine) as conn:
            result = await conn.execute(
                select(*sessions.c, _message_count).where(
                    sessions.c.id == session_id, sessions.c.owner == owner
                )
            )
            return result.first()

    async def end(self, session_id: uuid.UUID, owner: str) -> Row | None:
        """Mark the session ended once; None when it is unknown or already ended."""
        async with connect(self._engine) as conn:
            ended = await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.owner == owner,
                    sessions.c.ended_at.is_(None),
                )
                .values(ended_at=utcnow())
            )
            if ended.rowcount != 1:
                return None
            result = await conn.execute(
                select(*sessions.c, _message_count).where(sessions.c.id == session_id)
            )
            return result.first()

    async def purge(self, session_id: uuid.UUID, owner: str) -> bool:
        """Delete the session and (by cascade) its messages; False when unknown."""
        async with connect(self._engine) as conn:
            deleted = await conn.execute(
                delete(sessions).where(sessions.c.id == session_id, sessions.c.owner == owner)
            )
            return deleted.rowcount == 1

    async def list_messages(
        self, session_id: uuid.UUID, owner: str, after: int | None, limit: int
    ) -> list[Row] | None:
        """A page of messages in order, after message id `after`; None for an unknown session."""
        query = (
            select(messages.c.id, messages.c.role, messages.c.content, messages.c.created_at)
            .join(sessions, sessions.c.id == messages.c.session_id)
            .where(messages.c.session_id == session_id, sessions.c.owner == owner)
        )
        if after is not None:
            query = query.where(messages.c.id > after)
        async with connect(self._engine) as conn:
            rows = list((await conn.execute(query.order_by(messages.c.id).limit(limit))).all())
            if rows:
                return rows
            # An empty page: tell an empty session from an unknown one.
            found = await conn.execute(
                select(sessions.c.id).where(sessions.c.id == session_id, sessions.c.owner == owner)
            )
            return rows if found.first() is not None else None


class _Record:
    """Attribute access over a dict, shaped like a Row, for rows we just inserted."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


def record_of(values: dict[str, Any]) -> Any:
    """A Row-like record of values just written (saves a round trip to read them back)."""
    return _Record(dict(values))
