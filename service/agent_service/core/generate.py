"""A model call through the response cache: the one path chat and tasks share."""

from __future__ import annotations

from .cache import ResponseCache, cache_key
from .models import ChatMessage, ModelBackend


def system_prompt(agent_type: str) -> ChatMessage:
    return ChatMessage("system", f"You are a helpful {agent_type} agent.")


async def generate(
    model: ModelBackend, cache: ResponseCache, prompt: list[ChatMessage]
) -> tuple[str, bool]:
    """(reply, served_from_cache)."""
    key = None
    if cache.enabled:
        key = cache_key(model.name, model.model, [m.as_dict() for m in prompt])
        cached = await cache.get(key)
        if cached is not None:
            return cached, True
    reply = await model.complete(prompt)
    if key is not None:
        await cache.set(key, reply)
    return reply, False
