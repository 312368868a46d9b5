"""What the HTTP server does with connections that never complete a request: uvicorn with h11
and with httptools (over a minimal app), and the service itself (`python -m agent_service`:
its protocol, agent_service.server, and its request middleware), side by side.

    venv/bin/python -m bench.slow_clients            # ~1 minute; prints one table

Each gets (keep-alive 2 s; header and body timeouts 1 s where they exist) a connection that
sends nothing, one that stops in its headers, one that stops in its body and one idle after a
response; 5 s later the table says which the server still holds, then a fresh half-sent body
and SIGTERM measure how long the shutdown takes (graceful timeout 20 s). Everything is on
127.0.0.1 and bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvicorn

from .stack import API_KEY, clean_env, free_port, wait_for

KINDS = ("h11", "httptools", "service")

_POST = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench-key\r\n"
CASES = {
    "silent": b"",
    "half headers": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    "half body": _POST + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    "idle after a response": b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
}


async def app(scope: dict, receive: object, send: object) -> None:
    """Reads the whole body, answers 200 "ok"."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()  # type: ignore[operator]
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


def serve(kind: str, port: int) -> None:
    """uvicorn with `kind` over a minimal app (the service runs as itself, see _start)."""
    config = uvicorn.Config(
        app, port=port, http=kind, timeout_keep_alive=2, timeout_graceful_shutdown=20,
        log_level="critical", lifespan="off",
    )  # fmt: skip
    uvicorn.Server(config).run()


def _start(kind: str, port: int, log_dir: Path) -> subprocess.Popen:
    if kind != "service":
        args = ["-m", "bench.slow_clients", "--serve", kind, "--port", str(port)]
        return subprocess.Popen([sys.executable, *args])
    env = clean_env(
        PORT=str(port), HOST="127.0.0.1", API_KEYS=API_KEY, LOG_LEVEL="CRITICAL",
        SQLITE_PATH=str(log_dir / "agent.db"), SHUTDOWN_DRAIN_SECONDS="0",
        SHUTDOWN_TIMEOUT_SECONDS="20", KEEP_ALIVE_TIMEOUT_SECONDS="2",
        REQUEST_HEADER_TIMEOUT_SECONDS="1", REQUEST_BODY_TIMEOUT_SECONDS="1",
    )  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "agent_service"], env=env)


async def _state(reader: asyncio.StreamReader) -> str:
    """Whether the server still holds the connection; the status it answered, if any."""
    try:
        data = await asyncio.wait_for(reader.read(), 0.3)  # to EOF
    except TimeoutError:
        return "open"
    except ConnectionError:
        return "reset"
    if data.startswith(b"HTTP/1.1 "):
        return f"{data[9:12].decode()}, closed"
    return "closed"


async def measure(kind: str, log_dir: Path) -> dict[str, str]:
    port = free_port()
    proc = _start(kind, port, log_dir)

    def listening() -> bool:
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, 30, f"{kind} server listening")
        held = {}
        for name, data in CASES.items():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            held[name] = (reader, writer)
        reader = held["idle after a response"][0]
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # its response
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        await asyncio.sleep(5)
        row = {name: await _state(r) for name, (r, _) in held.items()}
        # Only the half-sent body can hold the shutdown: give it a fresh one.
        _, body_writer = await asyncio.open_connection("127.0.0.1", port)
        body_writer.write(CASES["half body"])
        await asyncio.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
        row["SIGTERM to exit"] = f"{time.monotonic() - started:.1f} s"
        for _, w in [*held.values(), (None, body_writer)]:
            w.close()
        return row
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=KINDS[:2], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return
    with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
        rows = {kind: asyncio.run(measure(kind, Path(tmp))) for kind in KINDS}
    columns = [*CASES, "SIGTERM to exit"]
    print("| server | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for kind, row in rows.items():
        print(f"| {kind} | " + " | ".join(row[c] for c in columns) + " |")


if __name__ == "__main__":
    main()
