"""Fault injection for the service: private PostgreSQL and Redis servers that a test may stop and
start again (the shared ones the other tests use are left alone), and a steady, bounded load
whose every outcome is recorded. Used by tests/faults (`make test`).
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from .polling import wait_until
from .stack import free_port


def _pg_bindir() -> Path:
    if shutil.which("pg_config"):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found and Path(found, "initdb").exists():
            return Path(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed (initdb not found); see `make services`")
    return Path(candidates[-1])


class PrivatePostgres:
    """A PostgreSQL cluster of its own on a free loopback port (trust auth, no fsync).

    As root it runs as the `postgres` user, as PostgreSQL requires."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="agent-faults-pg-"))
        self.port = free_port()
        self._bin = _pg_bindir()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        (self.root / "run").mkdir()
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.root / "run", "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root / 'run'} -c fsync=off"
        )
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "postgres.log"),
                  "-w", "-t", "60", "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown: open connections are closed, as in a restart or failover."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """redis-server on a free loopback port, without persistence, that can stop and start
    (again empty, on the same address) or pause."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="agent-faults-redis-"))
        self.port = free_port()
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.root)]
        with (self.root / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

        def pong() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(pong, 20, "private redis answering PING")
        finally:
            client.close()

    def pause(self) -> None:
        """A stall (SIGSTOP), not an outage: connections stay open, commands wait in their
        sockets (clients time out) and run on resume(), as after a long fork, a failover pause
        or a saturated node."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server; it loses every key (no persistence), as a restart would."""
        if self._proc is not None and self._proc.poll() is None:
            self.resume()  # a paused server would hold the SIGTERM until continued
            self._proc.terminate()
            self._proc.wait(20)
        self._proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Outcome:
    kind: str  # what was asked: "chat", "health", ...
    status: int | str  # the HTTP status, or the transport error's name
    body: bytes
    started: float
    ended: float


@dataclass
class SteadyLoad:
    """`users` clients, each with its own session, cycling chat -> health -> read session,
    back to back, until stop_sending() (a load balancer taking the pod out of rotation), at most
    `max_requests` in all and never past `deadline_s`. Requests already sent always finish."""

    base_url: str
    api_key: str
    users: int = 4
    max_requests: int = 5000
    deadline_s: float = 60.0
    timeout_s: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    _sending: bool = True

    def stop_sending(self) -> None:
        self._sending = False

    @property
    def sending(self) -> bool:
        return self._sending

    async def run(self) -> None:
        deadline = time.monotonic() + self.deadline_s
        await asyncio.wait_for(
            asyncio.gather(*(self._user(i, deadline) for i in range(self.users))),
            self.deadline_s + self.timeout_s + 5,
        )

    async def _user(self, index: int, deadline: float) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self.timeout_s, trust_env=False
        ) as client:
            created = await client.post("/v1/sessions", json={})
            created.raise_for_status()
            sid = created.json()["id"]
            n = 0
            while self._sending and time.monotonic() < deadline:
                if len(self.outcomes) >= self.max_requests:
                    return
                n += 1
                kind = ("chat", "health", "session")[n % 3]
                if kind == "chat":
                    text = f"user {index} message {n}"
                    request = client.post(f"/v1/sessions/{sid}/messages", json={"content": text})
                elif kind == "health":
                    request = client.get("/health")
                else:
                    request = client.get(f"/v1/sessions/{sid}")
                await self._record(kind, request)

    async def _record(self, kind: str, request: object) -> None:
        started = time.monotonic()
        try:
            response = await request  # type: ignore[misc]
        except httpx.HTTPError as exc:
            self.outcomes.append(Outcome(kind, type(exc).__name__, b"", started, time.monotonic()))
            return
        self.outcomes.append(
            Outcome(kind, response.status_code, response.content, started, time.monotonic())
        )

    def statuses(self, kind: str | None = None, since: float = 0.0) -> dict[int | str, int]:
        """Count of outcomes by status (of one kind, and started after `since`)."""
        counts: dict[int | str, int] = {}
        for o in self.outcomes:
            if (kind is None or o.kind == kind) and o.started >= since:
                counts[o.status] = counts.get(o.status, 0) + 1
        return counts
