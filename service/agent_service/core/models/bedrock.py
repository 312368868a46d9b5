"""The `bedrock` backend: Amazon Bedrock's Converse API through boto3.

boto3 blocks, so calls run on a dedicated thread pool sized like the HTTP pool; botocore does
the retries (standard mode) and timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from .base import ChatMessage, ModelBackend, ModelError, ModelTimeout

_DONE = object()


class BedrockBackend(ModelBackend):
    name = "bedrock"

    def __init__(
        self,
        *,
        model: str,
        region: str | None,
        timeout: float,
        max_retries: int,
        max_connections: int,
        max_tokens: int,
        client: Any = None,
    ) -> None:
        self.model = model
        self._max_tokens = max_tokens
        self._client = client or boto3.client(
            "bedrock-runtime",
            region_name=region,
            config=Config(
                connect_timeout=5,
                read_timeout=timeout,
                retries={"max_attempts": max_retries + 1, "mode": "standard"},
                max_pool_connections=max_connections,
            ),
        )
        self._pool = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix="bedrock")

    def _request(self, messages: list[ChatMessage]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "modelId": self.model,
            "messages": [
                {"role": m.role, "content": [{"text": m.content}]}
                for m in messages
                if m.role != "system"
            ],
            "inferenceConfig": {"maxTokens": self._max_tokens},
        }
        system = [{"text": m.content} for m in messages if m.role == "system"]
        if system:
            request["system"] = system
        return request

    async def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except ReadTimeoutError as exc:
            raise ModelTimeout("bedrock did not answer in time") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise ModelError(f"bedrock refused the call ({code})") from exc
        except BotoCoreError as exc:
            raise ModelError(f"bedrock unreachable ({type(exc).__name__})") from exc

    async def complete(self, messages: list[ChatMessage]) -> str:
        response = await self._call(partial(self._client.converse, **self._request(messages)))
        try:
            blocks = response["output"]["message"]["content"]
        except (KeyError, TypeError) as exc:
            raise ModelError("bedrock answered with an unexpected body") from exc
        return "".join(block.get("text", "") for block in blocks)

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        response = await self._call(
            partial(self._client.converse_stream, **self._request(messages))
        )
        events = iter(response["stream"])

        def next_text() -> Any:
            # One blocking read of the event stream: the next text delta, or _DONE.
            for event in events:
                delta = event.get("contentBlockDelta", {}).get("delta", {})
                if "text" in delta:
                    return delta["text"]
            return _DONE

        while (chunk := await self._call(next_text)) is not _DONE:
            yield chunk

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
