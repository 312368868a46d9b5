"""The `openai` backend: any OpenAI-compatible `POST {MODEL_URL}/chat/completions`.

One pooled aiohttp session per process (MODEL_MAX_CONNECTIONS connections), a timeout on every
call, and retries with exponential backoff and jitter on connection errors, timeouts, 429 and
5xx (honouring Retry-After).

aiohttp rather than httpx: measured on the benchmark machine, httpx spent ~600 us of CPU per
request and its pool's bookkeeping grows with the number of connections (~11 ms per request
at 200 concurrent calls), which capped a pod at a few dozen model-bound chats per second;
aiohttp spends ~80 us at any pool size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

import aiohttp
import orjson

from .base import ChatMessage, ModelBackend, ModelError, ModelTimeout

log = logging.getLogger(__name__)
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def _kind(exc: aiohttp.ClientError) -> str:
    # The same words clients saw before the switch from httpx.
    return "ConnectError" if isinstance(exc, aiohttp.ClientConnectorError) else type(exc).__name__


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
        self._url = url.rstrip("/") + "/chat/completions"
        self._retries = max_retries
        self._backoff = backoff_base
        self._max_tokens = max_tokens
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # Per read, not in total, so a long stream that keeps flowing is not cut off; `connect`
        # includes the wait for a pooled connection.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=min(timeout, 5.0), sock_read=timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop it belongs to.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, limit_per_host=self._max_connections
                ),
                timeout=self._timeout,
                headers=self._headers,
            )
        return self._session

    def _payload(self, messages: list[ChatMessage], stream: bool) -> bytes:
        return orjson.dumps(
            {
                "model": self.model,
                "messages": [m.as_dict() for m in messages],
                "max_tokens": self._max_tokens,
                "stream": stream,
            }
        )

    async def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self._backoff * 2**attempt * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), 10.0))
        await asyncio.sleep(delay)

    async def _send(self, payload: bytes) -> aiohttp.ClientResponse:
        """POST with retries; returns a 200 response, its body not read yet (the caller
        releases it)."""
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            retry_after = None
            try:
                response = await self._client().post(self._url, data=payload)
            except TimeoutError as exc:
                last = ModelTimeout(f"model did not answer in time ({type(exc).__name__})")
            except aiohttp.ClientError as exc:
                last = ModelError(f"model unreachable ({_kind(exc)})")
            else:
                if response.status == 200:
                    return response
                retry_after = response.headers.get("Retry-After")
                response.release()
                last = ModelError(f"model answered HTTP {response.status}")
                if response.status not in _RETRY_STATUS:
                    raise last
            if attempt < self._retries:
                log.warning("model call failed, retrying", extra={"attempt": attempt + 1})
                await self._wait(attempt, retry_after)
        assert last is not None
        raise last

    async def complete(self, messages: list[ChatMessage]) -> str:
        response = await self._send(self._payload(messages, stream=False))
        try:
            body = await response.read()
        except TimeoutError as exc:
            raise ModelTimeout("model did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise ModelError(f"model reply broke off ({type(exc).__name__})") from exc
        finally:
            response.release()
        try:
            return orjson.loads(body)["choices"][0]["message"]["content"] or ""
        except (ValueError, LookupError, TypeError) as exc:
            raise ModelError("model answered with an unexpected body") from exc

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        response = await self._send(self._payload(messages, stream=True))
        try:
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    delta = orjson.loads(data)["choices"][0]["delta"].get("content")
                except (ValueError, LookupError, TypeError, AttributeError) as exc:
                    raise ModelError("model streamed an unexpected event") from exc
                if delta:
                    yield delta
        except TimeoutError as exc:
            raise ModelTimeout("model stream stalled") from exc
        except aiohttp.ClientError as exc:
            raise ModelError("model stream broke off") from exc
        finally:
            response.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
