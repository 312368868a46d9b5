"""The `local` backend: deterministic and offline, for development and tests only.

It does no language modelling. It answers from the conversation itself (the turn number, what
the user said and how much history it saw), so a reply shows that history reached the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .base import ChatMessage, ModelBackend


class LocalBackend(ModelBackend):
    name = "local"

    def __init__(self, model: str) -> None:
        self.model = model

    async def complete(self, messages: list[ChatMessage]) -> str:
        return self._reply(messages)

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        words = self._reply(messages).split(" ")
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "

    @staticmethod
    def _reply(messages: list[ChatMessage]) -> str:
        turns = [m for m in messages if m.role == "user"]
        last = turns[-1].content if turns else ""
        earlier = sum(1 for m in messages[:-1] if m.role != "system")
        words = len(last.split())
        return (
            f"Turn {len(turns)}: you said {last!r} ({words} word{'' if words == 1 else 's'}). "
            f"I can see {earlier} earlier messages in this session."
        )
