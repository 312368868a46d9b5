"""Request and response bodies (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_MESSAGE_CHARS = 16_000
MAX_PROMPT_CHARS = 16_000
MAX_MESSAGE_ID = 2**63 - 1  # BIGINT


def _text(min_length: int, max_length: int) -> StringConstraints:
    # No NUL characters: PostgreSQL cannot store them in text (SQLSTATE 22021).
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=r"^[^\x00]*$")


MessageText = Annotated[str, _text(1, MAX_MESSAGE_CHARS)]
PromptText = Annotated[str, _text(1, MAX_PROMPT_CHARS)]
UserId = Annotated[str, _text(0, 128)]
LabelKey = Annotated[str, _text(1, 128)]
LabelValue = Annotated[str, _text(0, 1024)]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["session not found"])


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer has this shape."""

    error: ErrorDetail


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Request):
    user_id: UserId | None = Field(None, description="Caller's user reference.")
    metadata: dict[LabelKey, LabelValue] | None = Field(
        None, max_length=32, description="Free-form labels kept with the session."
    )


class Session(BaseModel):
    id: uuid.UUID
    agent_type: str
    status: Literal["active", "ended"]
    user_id: str | None
    metadata: dict[str, str] | None
    created_at: datetime
    ended_at: datetime | None
    message_count: int


class SessionEnded(BaseModel):
    id: uuid.UUID
    status: Literal["ended"]
    duration_seconds: float = Field(description="From creation to end.")
    message_count: int
    ended_at: datetime


class MessageCreate(_Request):
    content: MessageText


class Message(BaseModel):
    id: int
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime


class ModelInfo(BaseModel):
    backend: str
    model: str


class ChatReply(BaseModel):
    session_id: uuid.UUID
    message: Message
    reply: Message
    model: ModelInfo
    cached: bool = Field(description="The reply came from the response cache.")


class MessagePage(BaseModel):
    items: list[Message]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class TaskCreate(_Request):
    prompt: PromptText
    priority: Literal["high", "normal"] = "normal"


class Task(BaseModel):
    id: uuid.UUID
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    priority: Literal["high", "normal"]
    prompt: str
    result: str | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Health(BaseModel):
    status: Literal["ok"]


class DependencyCheck(BaseModel):
    status: Literal["up", "down", "disabled"]
    error: str | None = None


class Capacity(BaseModel):
    active_sessions: int
    max_sessions: int
    utilization: float


class Ready(BaseModel):
    status: Literal["ready", "degraded", "not_ready", "draining"]
    checks: dict[str, DependencyCheck]
    capacity: Capacity


class CacheStats(BaseModel):
    enabled: bool
    backend: Literal["redis", "memory"]
    ttl_seconds: int
    hits: int
    misses: int
    errors: int
    hit_rate: float


class Stats(BaseModel):
    """The course's service summary, for this pod."""

    service_name: str
    agent_type: str
    pod: str
    status: Literal["healthy", "degraded", "draining"]
    uptime_seconds: float
    request_count: int
    error_count: int
    client_error_count: int
    error_rate: float
    active_sessions: int
    max_sessions: int
    cache: CacheStats
    model: ModelInfo
    timestamp: float
