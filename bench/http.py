"""The load generator's HTTP clients, one per simulated user, behind one small interface.

`RawClient` is a minimal HTTP/1.1 keep-alive client on asyncio streams (plain http:// only):
on a 2-core machine the load generator competes with the service for CPU, and httpx costs
~600 us of CPU per request here (and far more with many connections in one pool), which would
make the generator, not the service, the bottleneck. `HttpxClient` wraps httpx (any URL, TLS)
for when that matters more than the generator's own cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx


@dataclass
class Response:
    status: int
    body: bytes
    first_byte: float | None = None  # seconds from send to the first body bytes (streams)

    def json(self) -> Any:
        return json.loads(self.body)


class Client(Protocol):
    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Response: ...

    async def aclose(self) -> None: ...


class TransportError(Exception):
    """The request got no complete response (refused, reset, timed out, malformed)."""


class RawClient:
    """One keep-alive connection, reopened when the server closes it or a request fails."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError("RawClient speaks plain http:// only (use --client httpx)")
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._prefix = parts.path.rstrip("/")
        fixed = {"Host": parts.netloc, **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Response:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(method, path, body, headers)
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self.aclose()
            kind = "Timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransportError(kind) from exc

    async def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict | None
    ) -> Response:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = f"{method} {self._prefix}{path} HTTP/1.1\r\n{self._fixed}"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        started = time.perf_counter()
        self._writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        first = None
        if "content-length" in fields:
            data = await self._reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                chunk = await self._reader.readexactly(size + 2)
                if first is None:
                    first = time.perf_counter() - started
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = b""
        if fields.get("connection", "").lower() == "close":
            await self.aclose()
        return Response(status, data, first)

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()


class HttpxClient:
    """httpx with one connection per simulated user (a shared pool of many connections costs
    milliseconds of CPU per request in httpcore's connection bookkeeping)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self._client = httpx.AsyncClient(
            base_url=url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,
        )

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Response:
        started = time.perf_counter()
        first = None
        try:
            request = self._client.build_request(method, path, content=body, headers=headers)
            response = await self._client.send(request, stream=True)
            parts = []
            async for chunk in response.aiter_bytes():
                if first is None:
                    first = time.perf_counter() - started
                parts.append(chunk)
            await response.aclose()
        except httpx.HTTPError as exc:
            raise TransportError(type(exc).__name__) from exc
        return Response(response.status_code, b"".join(parts), first)

    async def aclose(self) -> None:
        await self._client.aclose()


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}
