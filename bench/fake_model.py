"""A fake OpenAI-compatible model server for benchmarks: `POST /v1/chat/completions`.

It answers after a fixed latency, so the service's own overhead can be measured apart from the
model's. Deliberately lean (a bare ASGI callable under uvicorn with uvloop + httptools, no
framework): at 1,000 requests/s it must not take the CPU the service needs on a small machine.

The first token comes after `latency`, the others one every `1 / token_rate` seconds (all at
once when the rate is 0). Streaming (`"stream": true`) sends each token as it comes, then
`data: [DONE]`; otherwise the whole reply comes when the last token would have.

    python -m bench.fake_model --port 9100 --latency-ms 200 --token-rate 0 --tokens 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import uvicorn

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class FakeModel:
    """The ASGI app. `requests` counts completions served (read by tests in-process)."""

    def __init__(self, latency: float, token_rate: float, tokens: int) -> None:
        self.latency = latency
        self.token_rate = token_rate
        self.tokens = [f"tok{i} " for i in range(tokens - 1)] + [f"tok{tokens - 1}."]
        self.requests = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            await _respond(send, 404, _JSON, b'{"error":{"message":"not found"}}')
            return
        try:
            stream = bool(json.loads(body).get("stream"))
        except (ValueError, AttributeError):
            await _respond(send, 400, _JSON, b'{"error":{"message":"bad request"}}')
            return
        self.requests += 1
        await asyncio.sleep(self.latency)
        if stream:
            await self._stream(send)
            return
        if self.token_rate > 0:
            await asyncio.sleep((len(self.tokens) - 1) / self.token_rate)
        reply = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.tokens)},
                    "finish_reason": "stop",
                }
            ],
        }
        await _respond(send, 200, _JSON, json.dumps(reply).encode())

    async def _stream(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        for i, token in enumerate(self.tokens):
            if i and self.token_rate > 0:
                await asyncio.sleep(1 / self.token_rate)
            event = {"choices": [{"index": 0, "delta": {"content": token}}]}
            data = b"data: " + json.dumps(event).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _respond(send: Any, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=200.0, help="time to first token")
    parser.add_argument(
        "--token-rate", type=float, default=0.0, help="tokens per second after the first (0: all)"
    )
    parser.add_argument("--tokens", type=int, default=16, help="tokens per reply")
    args = parser.parse_args(argv)
    app = FakeModel(args.latency_ms / 1000, args.token_rate, max(args.tokens, 1))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
