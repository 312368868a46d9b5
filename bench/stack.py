"""Processes a benchmark or fault test runs: the service under uvicorn (one process, as in a
pod), task workers, the fake model; CPU and memory meters. Everything binds to 127.0.0.1 and
every wait has a deadline (bench/polling.py). Databases and Redis indexes: bench/storage.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from .polling import wait_until

API_KEY = "bench-key"
# Every variable the service reads (its published contract): a caller's own must not leak in.
CONTRACT = Path(__file__).resolve().parent.parent / "service" / "contract.json"
SERVICE_VARIABLES = frozenset(json.loads(CONTRACT.read_text())["environment"]["accepted"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**values: str) -> dict[str, str]:
    """This environment without service settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SERVICE_VARIABLES}
    env.update(values)
    return env


@dataclass
class Proc:
    """A child process with its output in a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Proc(name, popen, log)


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def service_env(
    database_url: str, redis_url: str | None, port: int | None = None, **extra: str
) -> dict:
    """The service's environment for a benchmark: loopback, one API key, a rate limit and a
    session cap high enough that the benchmark measures work rather than refusals."""
    values = {
        "HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "API_KEYS": API_KEY,
        "RATE_LIMIT": "1000000/minute",
        "MAX_CONCURRENT_SESSIONS": "100000",
        "LOG_LEVEL": "INFO",
        "SHUTDOWN_DRAIN_SECONDS": "0",
        "HOSTNAME": "bench",
        # No metrics port unless asked for (METRICS_PORT=...): several processes share a host.
        "METRICS_PORT": "0",
    }
    if port is not None:
        values["PORT"] = str(port)
    if redis_url:
        values["REDIS_URL"] = redis_url
    values.update(extra)
    return clean_env(**values)


def start_service(env: dict[str, str], log_dir: Path, name: str = "service") -> Proc:
    """`python -m agent_service`, waited for until /health answers."""
    proc = spawn(name, ["-m", "agent_service"], env, log_dir)
    url = f"http://127.0.0.1:{env['PORT']}/health"

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{name} exited:\n{proc.output()[-3000:]}")
        return http_ok(url)

    wait_until(up, 60, f"{name} answering {url}")
    return proc


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Proc:
    """`python -m agent_service.worker`, waited for until it has joined the consumer group."""
    proc = spawn(name, ["-m", "agent_service.worker"], env, log_dir)

    def started() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{name} exited:\n{proc.output()[-3000:]}")
        return '"worker started"' in proc.output()

    wait_until(started, 60, f"{name} started")
    return proc


def start_fake_model(
    log_dir: Path, latency_ms: float, token_rate: float = 0.0, tokens: int = 16
) -> tuple[Proc, str]:
    """The fake model server; returns it and its OpenAI base URL."""
    port = free_port()
    args = ["-m", "bench.fake_model", "--port", str(port), "--latency-ms", str(latency_ms)]
    args += ["--token-rate", str(token_rate), "--tokens", str(tokens)]
    proc = spawn("fake-model", args, clean_env(), log_dir)

    def listening() -> bool:
        if not proc.alive():
            raise RuntimeError(f"fake model exited:\n{proc.output()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(listening, 30, "fake model listening")
    return proc, f"http://127.0.0.1:{port}/v1"


# --- meters -------------------------------------------------------------------------------


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


@dataclass
class CpuMeter:
    """CPU seconds used between start() and stop(), per named process group and machine-wide.

    `groups` maps a name to a function returning the processes to count (looked up at start
    and at stop, so PostgreSQL backends opened in between are counted from their birth)."""

    groups: dict[str, Callable[[], list[psutil.Process]]]
    _start: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        self._start = {name: self._snapshot(find) for name, find in self.groups.items()}
        self._machine = self._busy()
        self._wall = time.monotonic()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

    @staticmethod
    def _snapshot(find: Callable[[], list[psutil.Process]]) -> dict[int, float]:
        out = {}
        for proc in find():
            try:
                out[proc.pid] = _cpu_seconds(proc)
            except psutil.Error:
                continue
        return out

    def stop(self) -> dict[str, float]:
        """Percent of one core per group, plus `machine` (percent of all cores) over the span."""
        wall = max(time.monotonic() - self._wall, 1e-6)
        out = {}
        for name, find in self.groups.items():
            now = self._snapshot(find)
            used = sum(v - self._start[name].get(pid, 0.0) for pid, v in now.items())
            out[name] = round(100 * used / wall, 1)
        cores = psutil.cpu_count() or 1
        out["machine"] = round(100 * (self._busy() - self._machine) / wall / cores, 1)
        return out


def processes_named(*names: str) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in names:
                found.append(proc)
        return found

    return find


def pids(*procs: Proc | int) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        out = []
        for p in procs:
            try:
                out.append(psutil.Process(p if isinstance(p, int) else p.pid))
            except psutil.Error:
                continue
        return out

    return find


class RssSampler:
    """The peak resident set size of one process, sampled every `every` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self._proc = psutil.Process(pid)
        self._every = every
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)
