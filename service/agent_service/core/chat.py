"""Chat: one message at a time per session, the model sees the recent history, both messages
are stored together when the reply is complete (whole or streamed), and only if no other
message was stored on the session meanwhile (the fence: see core/locks.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio

from ..storage.chat import ChatRepository, StoredMessage
from .active import ActiveSessions
from .cache import ResponseCache, cache_key
from .errors import Conflict, NotFound
from .generate import system_prompt
from .locks import Lease, LockToken, SessionLocks
from .models import ChatMessage, ModelBackend
from .ratelimit import RateLimiter


@dataclass
class ChatTurn:
    """A message accepted for a session: the lock is held until the reply is stored. `fence`
    is the session's turn count the prompt was built from."""

    session_id: uuid.UUID
    content: str
    prompt: list[ChatMessage]
    lock: LockToken
    fence: int
    lease: Lease | None = None
    released: bool = False


@dataclass
class ChatResult:
    message: StoredMessage
    reply: StoredMessage
    cached: bool


class ChatService:
    def __init__(
        self,
        repo: ChatRepository,
        model: ModelBackend,
        cache: ResponseCache,
        locks: SessionLocks,
        limiter: RateLimiter,
        active: ActiveSessions,
        history: int,
    ) -> None:
        self._repo = repo
        self.model = model
        self._cache = cache
        self._locks = locks
        self._limiter = limiter
        self._active = active
        self._history = history

    async def begin(self, owner: str, session_id: uuid.UUID, content: str) -> ChatTurn:
        """Rate limit and lock the session (one Redis round trip), then read the session and
        its history (one statement); raises 429/404/409 before any model call. The lock is
        the owner's (see core/locks.py): another key always gets 404, never 409."""
        token = self._locks.token(owner, session_id)
        locked = await self._limiter.check(owner, token if token.remote else None)
        lock = self._locks.acquire_local(token) if locked is None else (token if locked else None)
        if lock is None:
            raise Conflict(
                "a message is already running on this session", code="message_in_progress"
            )
        try:
            session, history = await self._repo.load_for_chat(session_id, owner, self._history)
            if session is None:
                raise NotFound("session not found")
            if session.ended_at is not None:
                raise Conflict("session has ended", code="session_ended")
        except BaseException:
            await self._locks.release(lock)
            raise
        self._active.touch(session_id, owner)
        prompt = [
            system_prompt(session.agent_type),
            *(ChatMessage(role, content) for role, content in history),
            ChatMessage("user", content),
        ]
        return ChatTurn(session_id, content, prompt, lock, session.turns, self._locks.lease(lock))

    def _key(self, prompt: list[ChatMessage]) -> str | None:
        if not self._cache.enabled:
            return None
        return cache_key(self.model.name, self.model.model, [m.as_dict() for m in prompt])

    async def _release(self, turn: ChatTurn, key: str | None, fresh: str | None) -> None:
        """Release the lock and cache a fresh reply: one Redis round trip when both go there."""
        if turn.released:
            return
        turn.released = True
        if turn.lease is not None:
            await turn.lease.stop()
        lock = turn.lock
        entry = (key, fresh, self._cache.ttl) if key is not None and fresh is not None else None
        if lock.remote:
            await self._locks.release(lock, entry)
            return
        await self._locks.release(lock)
        if entry is not None:
            await self._cache.set(entry[0], entry[1])

    async def reply(self, turn: ChatTurn) -> ChatResult:
        """The whole reply, stored with the user's message (cached only once stored)."""
        try:
            key = self._key(turn.prompt)
            cached = await self._cache.get(key) if key is not None else None
            text = cached if cached is not None else await self.model.complete(turn.prompt)
            message, reply = await self._store(turn, text)
        except BaseException:
            # Shielded: a cancelled request must still free the session.
            with anyio.CancelScope(shield=True):
                await self._release(turn, None, None)
            raise
        await self._release(turn, key, text if cached is None else None)
        return ChatResult(message, reply, cached is not None)

    async def _store(self, turn: ChatTurn, text: str) -> tuple[StoredMessage, StoredMessage]:
        """Append the exchange if the history is still the one the model saw."""
        stored = await self._repo.append_exchange(turn.session_id, turn.content, text, turn.fence)
        if stored is not None:
            return stored
        if not await self._repo.exists(turn.session_id):
            raise NotFound("session not found")
        raise Conflict(
            "another message on this session was stored while this one ran; nothing was "
            "stored, send it again",
            code="history_changed",
        )

    async def abandon(self, turn: ChatTurn) -> None:
        """Free the session of a turn whose reply will never be produced (idempotent)."""
        await self._release(turn, None, None)

    async def stream(self, turn: ChatTurn) -> AsyncIterator[str | ChatResult]:
        """Chunks of the reply as they come, then the stored ChatResult.

        Nothing is stored when the client goes away or the model fails mid-stream.
        """
        key = self._key(turn.prompt)
        fresh = None
        try:
            cached = await self._cache.get(key) if key is not None else None
            if cached is not None:
                yield cached
                text = cached
            else:
                chunks = []
                async for chunk in self.model.stream(turn.prompt):
                    chunks.append(chunk)
                    yield chunk
                text = "".join(chunks)
            message, reply = await self._store(turn, text)
            fresh = text if cached is None else None
            yield ChatResult(message, reply, cached is not None)
        finally:
            # A client that disconnects cancels the stream; the release must still happen.
            with anyio.CancelScope(shield=True):
                await self._release(turn, key, fresh)
