"""The `openai` backend: any OpenAI-compatible `POST {MODEL_URL}/chat/completions`.

One pooled httpx client per process, a timeout on every call, and retries with exponential
backoff and jitter on connection errors, timeouts, 429 and 5xx (honouring Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator

import httpx

from .base import ChatMessage, ModelBackend, ModelError, ModelTimeout

log = logging.getLogger(__name__)
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIBackend(ModelBackend):
    name = "openai"

    def __init__(
        self,
        *,
        url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        max_connections: int,
        max_tokens: int,
        backoff_base: float = 0.25,
    ) -> None:
        self.model = model
        self._retries = max_retries
        self._backoff = backoff_base
        self._max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def _payload(self, messages: list[ChatMessage], stream: bool) -> dict:
        return {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "max_tokens": self._max_tokens,
            "stream": stream,
        }

    async def _wait(self, attempt: int, response: httpx.Response | None) -> None:
        delay = self._backoff * 2**attempt * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
        if response is not None and (after := response.headers.get("retry-after")):
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(after), 10.0))
        await asyncio.sleep(delay)

    async def _send(self, payload: dict, stream: bool) -> httpx.Response:
        """POST with retries; returns a 200 response (streamed responses left open)."""
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            response = None
            try:
                request = self._client.build_request("POST", "chat/completions", json=payload)
                response = await self._client.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                last = ModelTimeout(f"model did not answer in time ({type(exc).__name__})")
            except httpx.TransportError as exc:
                last = ModelError(f"model unreachable ({type(exc).__name__})")
            else:
                if response.status_code == 200:
                    return response
                await response.aclose()
                last = ModelError(f"model answered HTTP {response.status_code}")
                if response.status_code not in _RETRY_STATUS:
                    raise last
            if attempt < self._retries:
                log.warning("model call failed, retrying", extra={"attempt": attempt + 1})
                await self._wait(attempt, response)
        assert last is not None
        raise last

    async def complete(self, messages: list[ChatMessage]) -> str:
        response = await self._send(self._payload(messages, stream=False), stream=False)
        try:
            return response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, LookupError, TypeError) as exc:
            raise ModelError("model answered with an unexpected body") from exc

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        response = await self._send(self._payload(messages, stream=True), stream=True)
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    delta = json.loads(data)["choices"][0]["delta"].get("content")
                except (ValueError, LookupError, TypeError, AttributeError) as exc:
                    raise ModelError("model streamed an unexpected event") from exc
                if delta:
                    yield delta
        except httpx.TimeoutException as exc:
            raise ModelTimeout("model stream stalled") from exc
        except httpx.TransportError as exc:
            raise ModelError("model stream broke off") from exc
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
