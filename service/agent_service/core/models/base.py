"""The one interface every model backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class ModelError(Exception):
    """The backend failed (after its retries); the API answers 502."""

    status = 502
    code = "model_error"


class ModelTimeout(ModelError):
    """The backend did not answer in MODEL_TIMEOUT seconds; the API answers 504."""

    status = 504
    code = "model_timeout"


class ModelBackend(ABC):
    """A chat model: whole replies (`complete`) or chunks as they come (`stream`)."""

    name: str
    model: str

    @abstractmethod
    async def complete(self, messages: list[ChatMessage]) -> str:
        """The model's reply to the conversation."""

    @abstractmethod
    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        """The reply in chunks; their concatenation equals what `complete` would return."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold a pool
        """Release pooled connections."""
