"""Model backends behind one interface; `create_backend` picks the one MODEL_BACKEND names."""

from __future__ import annotations

from ...config import Settings
from .base import ChatMessage, ModelBackend, ModelError, ModelTimeout

__all__ = ["ChatMessage", "ModelBackend", "ModelError", "ModelTimeout", "create_backend"]


def create_backend(settings: Settings) -> ModelBackend:
    """The configured backend, with its pooled client created once for the process."""
    model = settings.resolved_model_id
    if settings.model_backend == "openai":
        from .openai import OpenAIBackend

        assert settings.model_url is not None  # checked by Settings.check_consistency
        key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
        return OpenAIBackend(
            url=settings.model_url,
            model=model,
            api_key=key,
            timeout=settings.model_timeout,
            max_retries=settings.model_max_retries,
            max_connections=settings.model_max_connections,
            max_tokens=settings.model_max_tokens,
        )
    if settings.model_backend == "bedrock":
        from .bedrock import BedrockBackend

        return BedrockBackend(
            model=model,
            region=settings.aws_region,
            timeout=settings.model_timeout,
            max_retries=settings.model_max_retries,
            max_connections=settings.model_max_connections,
            max_tokens=settings.model_max_tokens,
        )
    from .local import LocalBackend

    return LocalBackend(model)
