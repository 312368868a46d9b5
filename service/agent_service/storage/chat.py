"""The chat path's statements: read a session with its recent history, store an exchange
against the fence. Built once (constructing a statement per call costs more than running it)
and, on PostgreSQL, run through asyncpg directly (see db.fetch)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import autocommit, connect, fetch, transactional
from .repositories import utcnow
from .tables import messages, sessions

_recent = (
    select(messages.c.id)
    .where(messages.c.session_id == bindparam("sid"))
    .order_by(messages.c.id.desc())
    .limit(bindparam("n"))
    .scalar_subquery()
)
_LOAD_FOR_CHAT = (
    select(
        sessions.c.ended_at,
        sessions.c.agent_type,
        sessions.c.turns,
        messages.c.role,
        messages.c.content,
    )
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

_FENCE = (
    update(sessions)
    .where(sessions.c.id == bindparam("sid"), sessions.c.turns == bindparam("fence"))
    .values(turns=sessions.c.turns + 1)
)

# The same statements as asyncpg runs them on PostgreSQL (see db.fetch): compiled from the
# statement above, and the fenced two-row insert written out ($1 session, $2 user text,
# $3 reply, $4 time, $5 the turn count the prompt was built from). The UPDATE takes the
# session's row lock, and a concurrent one re-checks `turns` once that lock is free (READ
# COMMITTED), so of two replies built from the same history exactly one is stored.
_PG_LOAD = _LOAD_FOR_CHAT.compile(dialect=postgresql_asyncpg.dialect())
_PG_LOAD_SQL = _PG_LOAD.string
_PG_LOAD_PARAMS = tuple(_PG_LOAD.positiontup or ())
_PG_APPEND_SQL = (
    "WITH fence AS (UPDATE sessions SET turns = turns + 1 "
    "WHERE id = $1 AND turns = $5::integer RETURNING id) "
    "INSERT INTO messages (session_id, role, content, created_at) "
    "SELECT fence.id, v.role, v.content, $4::timestamptz FROM fence, "
    "(VALUES (1, 'user', $2::text), (2, 'assistant', $3::text)) AS v(n, role, content) "
    "ORDER BY v.n "
    "RETURNING id, role, content, created_at"
)


class ChatSession(NamedTuple):
    ended_at: datetime | None
    agent_type: str
    turns: int


class StoredMessage(NamedTuple):
    id: int
    role: str
    content: str
    created_at: datetime


class ChatRepository:
    """A session's history for the model, and its exchanges; scoped to the owning API key."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)
        self._pg = engine.dialect.name == "postgresql"

    async def load_for_chat(
        self, session_id: uuid.UUID, owner: str, history: int
    ) -> tuple[ChatSession | None, list[tuple[str, str]]]:
        """The session and its last `history` messages as (role, content), oldest first, in
        one statement."""
        params = {"sid": session_id, "owner": owner, "n": history}
        if self._pg:
            rows = await fetch(self._engine, _PG_LOAD_SQL, *(params[p] for p in _PG_LOAD_PARAMS))
        else:
            async with connect(self._engine) as conn:
                rows = (await conn.execute(_LOAD_FOR_CHAT, params)).all()
        if not rows:
            return None, []
        first = rows[0]
        session = ChatSession(first[0], first[1], first[2])
        return session, [(r[3], r[4]) for r in rows if r[3] is not None]

    async def append_exchange(
        self, session_id: uuid.UUID, user_content: str, reply: str, fence: int
    ) -> tuple[StoredMessage, StoredMessage] | None:
        """Store the user's message and the reply in one statement, if the session still has
        `fence` turns (the history the reply was built from); returns both, or None when
        another exchange was stored meanwhile or the session is gone."""
        now = utcnow()
        if self._pg:
            rows = await fetch(
                self._engine, _PG_APPEND_SQL, session_id, user_content, reply, now, fence
            )
        else:
            values = [
                {"session_id": session_id, "role": role, "content": text, "created_at": now}
                for role, text in (("user", user_content), ("assistant", reply))
            ]
            # SQLite: one transaction (writers are serialized, so the check holds).
            async with transactional(self._engine).begin() as conn:
                fenced = await conn.execute(_FENCE, {"sid": session_id, "fence": fence})
                rows = (await conn.execute(_APPEND, values)).all() if fenced.rowcount == 1 else []
        if not rows:
            return None
        stored = sorted((StoredMessage(*r) for r in rows), key=lambda m: m.id)
        return stored[0], stored[1]

    async def exists(self, session_id: uuid.UUID) -> bool:
        async with connect(self._engine) as conn:
            found = await conn.execute(select(sessions.c.id).where(sessions.c.id == session_id))
            return found.first() is not None
