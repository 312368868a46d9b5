"""A model backend wrapped with its metrics: every call counted by outcome (ok, error, timeout)
and timed, and, for chat, counted in agent_chats_in_flight while it runs.

A call the caller abandons (a client gone mid-stream: the task is cancelled) is neither ok nor
failed, so it is not counted; it leaves the in-flight count all the same.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from ..metrics import Metrics
from .base import ChatMessage, ModelBackend, ModelTimeout


class MeteredModel(ModelBackend):
    """`inner` with metrics; `chats=True` for the chat path (agent_chats_in_flight)."""

    def __init__(self, inner: ModelBackend, metrics: Metrics, *, chats: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self._record = metrics.model_recorder(inner.name)
        self._waiting = metrics if chats else None

    def _enter(self) -> None:
        if self._waiting is not None:
            self._waiting.chats_waiting += 1

    def _leave(self) -> None:
        if self._waiting is not None:
            self._waiting.chats_waiting -= 1

    async def complete(self, messages: list[ChatMessage]) -> str:
        self._enter()
        start = time.perf_counter()
        try:
            reply = await self.inner.complete(messages)
        except ModelTimeout:
            self._record("timeout", time.perf_counter() - start)
            raise
        except Exception:
            self._record("error", time.perf_counter() - start)
            raise
        finally:
            self._leave()
        self._record("ok", time.perf_counter() - start)
        return reply

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        self._enter()
        start = time.perf_counter()
        chunks = self.inner.stream(messages)
        outcome = None
        try:
            async for chunk in chunks:
                yield chunk
            outcome = "ok"
        except ModelTimeout:
            outcome = "timeout"
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            self._leave()
            if outcome is not None:
                self._record(outcome, time.perf_counter() - start)
            else:
                # Abandoned: close the backend's stream now (its response goes back to the
                # pool) rather than when the garbage collector finds it.
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()

    async def aclose(self) -> None:
        await self.inner.aclose()
