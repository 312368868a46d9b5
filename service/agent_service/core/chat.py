"""Chat: one message at a time per session, the model sees the recent history, both messages
are stored together when the reply is complete (whole or streamed)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from sqlalchemy import Row

from ..storage.repositories import SessionRepository
from .active import ActiveSessions
from .cache import ResponseCache, cache_key
from .errors import Conflict, NotFound
from .generate import generate, system_prompt
from .locks import LockToken, SessionLocks
from .models import ChatMessage, ModelBackend


@dataclass
class ChatTurn:
    """A message accepted for a session: the lock is held until the reply is stored."""

    session_id: uuid.UUID
    content: str
    prompt: list[ChatMessage]
    lock: LockToken


@dataclass
class ChatResult:
    message: Row
    reply: Row
    cached: bool


class ChatService:
    def __init__(
        self,
        repo: SessionRepository,
        model: ModelBackend,
        cache: ResponseCache,
        locks: SessionLocks,
        active: ActiveSessions,
        history: int,
    ) -> None:
        self._repo = repo
        self.model = model
        self._cache = cache
        self._locks = locks
        self._active = active
        self._history = history

    async def begin(self, owner: str, session_id: uuid.UUID, content: str) -> ChatTurn:
        """Lock the session and build the prompt; raises 404/409 before any model call."""
        lock = await self._locks.acquire(session_id)
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
        self._active.touch(session_id)
        prompt = [
            system_prompt(session.agent_type),
            *(ChatMessage(r.role, r.content) for r in history),
            ChatMessage("user", content),
        ]
        return ChatTurn(session_id, content, prompt, lock)

    async def reply(self, turn: ChatTurn) -> ChatResult:
        """The whole reply, stored with the user's message."""
        try:
            text, cached = await generate(self.model, self._cache, turn.prompt)
            message, reply = await self._repo.append_exchange(turn.session_id, turn.content, text)
            return ChatResult(message, reply, cached)
        finally:
            await self._locks.release(turn.lock)

    async def stream(self, turn: ChatTurn) -> AsyncIterator[str | ChatResult]:
        """Chunks of the reply as they come, then the stored ChatResult.

        Nothing is stored when the client goes away or the model fails mid-stream.
        """
        try:
            key = None
            cached = None
            if self._cache.enabled:
                key = cache_key(
                    self.model.name, self.model.model, [m.as_dict() for m in turn.prompt]
                )
                cached = await self._cache.get(key)
            if cached is not None:
                yield cached
                text = cached
            else:
                chunks = []
                async for chunk in self.model.stream(turn.prompt):
                    chunks.append(chunk)
                    yield chunk
                text = "".join(chunks)
                if key is not None:
                    await self._cache.set(key, text)
            message, reply = await self._repo.append_exchange(turn.session_id, turn.content, text)
            yield ChatResult(message, reply, cached is not None)
        finally:
            # A client that disconnects cancels the stream; the release must still happen.
            with anyio.CancelScope(shield=True):
                await self._locks.release(turn.lock)
