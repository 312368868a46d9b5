"""Test doubles: a real HTTP server speaking the OpenAI chat API, and an in-process model whose
replies wait for the test to release them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent_service.core.models import ChatMessage, ModelBackend


class FakeOpenAI:
    """`POST /v1/chat/completions` on 127.0.0.1 (a real socket, its own thread).

    Replies "echo: <last user message>", streamed word by word when asked. `script` holds
    canned failures for the next calls (an HTTP status, or "hang" to exceed the timeout);
    `delay` is the model's latency.
    """

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.script: list[int | str] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                """Quiet: the tests assert on what the fake records, not on its access log."""

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length))
                with fake._lock:
                    fake.requests.append(payload)
                    fake.headers.append(dict(self.headers))
                    action = fake.script.pop(0) if fake.script else None
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if action == "hang":
                    time.sleep(2.0)  # longer than the client's timeout in the test
                    return
                if isinstance(action, int):
                    self._send(action, {"error": {"message": f"scripted {action}"}})
                    return
                if fake.delay:
                    time.sleep(fake.delay)  # the fake model's latency
                last = [m for m in payload["messages"] if m["role"] == "user"][-1]["content"]
                reply = f"echo: {last}"
                if not payload.get("stream"):
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "model": payload["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply},
                                    "finish_reason": "stop",
                                }
                            ],
                        },
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                words = reply.split(" ")
                chunks = [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]
                for chunk in chunks:
                    event = {"choices": [{"index": 0, "delta": {"content": chunk}}]}
                    self._chunk(f"data: {json.dumps(event)}\n\n".encode())
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GatedModel(ModelBackend):
    """Replies "gated: <message>" once `release()` is called; records who is waiting."""

    name = "gated"
    model = "gated-1"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0
        self.calls: list[list[ChatMessage]] = []

    def release(self) -> None:
        self.gate.set()

    async def complete(self, messages: list[ChatMessage]) -> str:
        self.calls.append(messages)
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        return f"gated: {messages[-1].content}"

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        yield await self.complete(messages)


class FailingModel(ModelBackend):
    """Raises an unexpected (non-model) error, to check that no traceback reaches a client."""

    name = "failing"
    model = "failing-1"

    async def complete(self, messages: list[ChatMessage]) -> str:
        raise RuntimeError("secret internal detail")

    async def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        raise RuntimeError("secret internal detail")
        yield ""


class TcpProxy:
    """A loopback TCP proxy the test can cut and restore: a dependency going down and back up
    without restarting anything."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            # A cut connection is what this proxy exists to produce: not an error.
            try:
                with contextlib.suppress(ConnectionError, OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
