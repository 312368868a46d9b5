"""HTTP connections against the real server (uvicorn + httptools): connections that never
complete a request are timed out, cannot stretch the shutdown, and reused keep-alive
connections are told to close while the pod drains."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from urllib.parse import urlsplit

import httpx
from agent_service.config import Settings

from infra import contract

from .conftest import API_KEY, ServiceFactory, until

HALF_HEADERS = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: "
HALF_BODY = (
    b"POST /v1/sessions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer "
    + API_KEY.encode()
    + b'\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"user_id": '
)
HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
TOO_BIG = (
    b"POST /v1/sessions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer "
    + API_KEY.encode()
    + b"\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"
)


def _port(base: str) -> int:
    return urlsplit(base).port or 80


async def _open(port: int, send: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if send:
        writer.write(send)
        await writer.drain()
    return reader, writer


async def _until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[float, bytes]:
    """(seconds until the server closed the connection, what it sent before). A reset (the
    server closed with bytes of ours unread) counts as closed, having sent nothing more."""
    started = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), timeout)  # reads to EOF
    except ConnectionResetError:
        data = b""
    return time.monotonic() - started, data


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *lines = head.rstrip(b"\r\n").split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    body = await asyncio.wait_for(reader.readexactly(int(headers[b"content-length"])), 10)
    return status, headers, body


async def test_idle_and_half_sent_connections_are_timed_out(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    _, base = start_service(
        shared_database,
        shared_redis,
        KEEP_ALIVE_TIMEOUT_SECONDS="2",
        REQUEST_HEADER_TIMEOUT_SECONDS="1",
        REQUEST_BODY_TIMEOUT_SECONDS="1",
    )
    port = _port(base)
    # (reader, writer) pairs: a writer dropped would close its connection.
    silent = await _open(port)
    half_headers = await _open(port, HALF_HEADERS)
    half_body = await _open(port, HALF_BODY)
    kept = await _open(port, HEALTH)
    status, headers, _ = await _response(kept[0])
    assert status == b"HTTP/1.1 200 OK" and b"connection" not in headers

    connections = (silent, half_headers, half_body, kept)
    results = await asyncio.gather(*(_until_closed(r, 15) for r, _ in connections))
    (silent_s, silent_data), (headers_s, headers_data), (body_s, body_data), (kept_s, _) = results

    # Nothing sent: idle, like a kept-alive connection between requests.
    assert silent_data == b""
    assert 1.5 <= silent_s <= 5
    assert 1.5 <= kept_s <= 5
    # Headers not finished within 1 s of their first byte: 408 and closed.
    assert headers_data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in headers_data
    assert json.loads(headers_data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    assert headers_s <= 4
    # Body not finished within 1 s of the headers: the app's JSON 408, and closed.
    assert body_data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in body_data.lower()
    body = json.loads(body_data.split(b"\r\n\r\n", 1)[1])
    assert body["error"] == {
        "code": "request_timeout",
        "message": "request body not received within REQUEST_BODY_TIMEOUT_SECONDS",
    }
    assert body_s <= 4
    for _, writer in connections:
        writer.close()


async def test_a_response_sent_before_the_body_was_read_closes_the_connection(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    """413 on Content-Length alone: the body is never read, so the connection cannot carry
    another request; it closes at once instead of letting the client drip the rest."""
    _, base = start_service(shared_database, shared_redis, KEEP_ALIVE_TIMEOUT_SECONDS="30")
    reader, writer = await _open(_port(base), TOO_BIG)
    status, _, body = await _response(reader)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    writer.write(b'"more body, ')
    await writer.drain()
    elapsed, rest = await _until_closed(reader, 5)
    assert rest == b""
    assert elapsed <= 2
    writer.close()


async def test_connections_held_open_do_not_stretch_the_shutdown(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    """2,000 connections that never complete a request, then SIGTERM: the process exits once
    the drain (5 s) and the body timeout (10 s) are over, well inside the grace period (30 s
    after SIGTERM), instead of waiting out the whole shutdown timeout (5 s + 20 s)."""
    proc, base = start_service(
        shared_database,
        shared_redis,
        SHUTDOWN_DRAIN_SECONDS=str(contract.SHUTDOWN_DRAIN_SECONDS),
        SHUTDOWN_TIMEOUT_SECONDS=str(contract.SHUTDOWN_TIMEOUT_SECONDS),
    )
    port = _port(base)
    held = []
    for send, count in ((b"", 700), (HALF_HEADERS, 700), (HALF_BODY, 600)):
        for _ in range(count):
            held.append(await _open(port, send))
    async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as client:
        # Every half-sent body has reached the app, which waits for the rest.
        assert (await client.get("/health")).status_code == 200

    proc.signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = await asyncio.to_thread(proc.popen.wait, 60)
    exited_after = time.monotonic() - signalled
    print(f"{len(held)} held connections: exited {exited_after:.1f} s after SIGTERM")
    assert code == 0, proc.output()[-3000:]
    body_timeout = Settings.model_fields["request_body_timeout_seconds"].default
    assert body_timeout == 10
    # The bodies started before the signal: they time out while the pod drains or soon after.
    assert exited_after <= max(contract.SHUTDOWN_DRAIN_SECONDS, body_timeout) + 4, exited_after
    assert '"msg":"agent service stopped"' in proc.output()
    for _, writer in held:
        writer.close()


async def test_draining_tells_reused_connections_to_close(
    start_service: ServiceFactory, shared_database: str, shared_redis: str
) -> None:
    """After SIGTERM every response says `Connection: close` and the connection is closed
    after it, so no client reuses a connection the server is about to drop (a reset); new
    connections are still served until the drain ends."""
    proc, base = start_service(shared_database, shared_redis, SHUTDOWN_DRAIN_SECONDS="6")
    reader, writer = await _open(_port(base), HEALTH)
    status, headers, _ = await _response(reader)
    assert status == b"HTTP/1.1 200 OK" and b"connection" not in headers

    proc.signal(signal.SIGTERM)
    async with httpx.AsyncClient(base_url=base, timeout=5, trust_env=False) as probe:

        async def draining() -> bool:
            return (await probe.get("/ready")).status_code == 503

        await until(draining, timeout=10)
        # The same kept-alive connection, reused during the drain.
        writer.write(HEALTH)
        await writer.drain()
        status, headers, body = await _response(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert json.loads(body) == {"status": "ok"}
        assert headers[b"connection"] == b"close"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        # A keep-alive client is served on fresh connections, each told to close.
        for _ in range(3):
            response = await probe.get("/health")
            assert response.status_code == 200
            assert response.headers["connection"] == "close"
    writer.close()
    assert await asyncio.to_thread(proc.popen.wait, 30) == 0
