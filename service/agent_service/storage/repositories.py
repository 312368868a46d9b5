"""Repositories: every SQL statement of sessions and messages (tasks: task_repository.py).

Each statement commits on its own (autocommit): every write here is a single statement, so this
is as atomic as a transaction and saves the BEGIN and COMMIT round trips on the hot path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, and_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import autocommit, connect, driver
from .tables import messages, sessions


def utcnow() -> datetime:
    return datetime.now(UTC)


# Computed, not stored: keeps storing a chat exchange to one INSERT.
_message_count = (
    select(func.count())
    .where(messages.c.session_id == sessions.c.id)
    .correlate(sessions)
    .scalar_subquery()
    .label("message_count")
)


# The chat path's statements, built once: constructing a statement per call costs more than
# running it.
_recent = (
    select(messages.c.id)
    .where(messages.c.session_id == bindparam("sid"))
    .order_by(messages.c.id.desc())
    .limit(bindparam("n"))
    .scalar_subquery()
)
_LOAD_FOR_CHAT = (
    select(sessions.c.ended_at, sessions.c.agent_type, messages.c.role, messages.c.content)
    .select_from(
        sessions.outerjoin(
            messages, and_(messages.c.session_id == sessions.c.id, messages.c.id.in_(_recent))
        )
    )
    .where(sessions.c.id == bindparam("sid"), sessions.c.owner == bindparam("owner"))
    .order_by(messages.c.id)
)
_APPEND = insert(messages).returning(
    messages.c.id,
    messages.c.role,
    messages.c.content,
    messages.c.created_at,
    sort_by_parameter_order=True,
)

# The same two statements as asyncpg runs them on PostgreSQL (see db.driver): compiled from
# the statement above, and the two-row insert written out ($1 session, $2 user text, $3 reply).
_PG_LOAD = _LOAD_FOR_CHAT.compile(dialect=postgresql_asyncpg.dialect())
_PG_LOAD_SQL = _PG_LOAD.string
_PG_LOAD_PARAMS = tuple(_PG_LOAD.positiontup or ())
_PG_APPEND_SQL = (
    "INSERT INTO messages (session_id, role, content, created_at) "
    "VALUES ($1, 'user', $2, $4), ($1, 'assistant', $3, $4) "
    "RETURNING id, role, content, created_at"
)


class ChatSession(NamedTuple):
    ended_at: datetime | None
    agent_type: str


class StoredMessage(NamedTuple):
    id: int
    role: str
    content: str
    created_at: datetime


class SessionRepository:
    """Sessions and their messages, always scoped to the owning API key."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)
        self._pg = engine.dialect.name == "postgresql"

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

    async def load_for_chat(
        self, session_id: uuid.UUID, owner: str, history: int
    ) -> tuple[ChatSession | None, list[tuple[str, str]]]:
        """The session and its last `history` messages as (role, content), oldest first, in
        one statement."""
        params = {"sid": session_id, "owner": owner, "n": history}
        if self._pg:
            async with driver(self._engine) as raw:
                rows = await raw.fetch(_PG_LOAD_SQL, *(params[p] for p in _PG_LOAD_PARAMS))
        else:
            async with connect(self._engine) as conn:
                rows = (await conn.execute(_LOAD_FOR_CHAT, params)).all()
        if not rows:
            return None, []
        first = rows[0]
        return ChatSession(first[0], first[1]), [(r[2], r[3]) for r in rows if r[2] is not None]

    async def append_exchange(
        self, session_id: uuid.UUID, user_content: str, reply: str
    ) -> tuple[StoredMessage, StoredMessage]:
        """Store the user's message and the reply in one statement; returns both."""
        now = utcnow()
        if self._pg:
            async with driver(self._engine) as raw:
                rows = await raw.fetch(_PG_APPEND_SQL, session_id, user_content, reply, now)
        else:
            values = [
                {"session_id": session_id, "role": role, "content": text, "created_at": now}
                for role, text in (("user", user_content), ("assistant", reply))
            ]
            async with connect(self._engine) as conn:
                rows = (await conn.execute(_APPEND, values)).all()
        stored = sorted((StoredMessage(*r) for r in rows), key=lambda m: m.id)
        return stored[0], stored[1]

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
