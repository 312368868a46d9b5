"""The worker's readiness check (`python -m agent_service.readiness`): ready while the loop
consumes from Redis, not ready (with the reason) while it cannot, ready again when Redis is back,
all without restarting the worker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from agent_service.readiness import ConsumeState, check

from bench.polling import eventually

from .fakes import TcpProxy
from .test_process import _env


def _probe(path: Path, max_age: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent_service.readiness", "--max-age", str(max_age)],
        env=_env(WORKER_READY_FILE=str(path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_state_file_tells_ready_from_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ready"
    assert check(str(path), 30) == (False, f"not ready: the worker has not started (no {path})")
    state = ConsumeState(str(path), every=3600)
    state.started()
    assert check(str(path), 30) == (False, "not ready: no read from the queue yet")
    state.failed("ConnectionError: Connection refused")
    assert check(str(path), 30) == (
        False,
        "not ready: no read from the queue yet; last error: ConnectionError: Connection refused",
    )
    state.consumed()  # the first success is written at once, despite `every`
    consumed_at = json.loads(path.read_text())["consumed_at"]
    assert check(str(path), 30, now=consumed_at + 2) == (
        True,
        "ready: last read from the queue 2.0s ago",
    )
    assert check(str(path), 30, now=consumed_at + 31) == (
        False,
        "not ready: no read from the queue for 31s (max 30s)",
    )
    state.failed("ResponseError: NOGROUP No such key")  # a new error is written at once too
    assert check(str(path), 30, now=consumed_at + 45) == (
        False,
        "not ready: no read from the queue for 45s (max 30s); "
        "last error: ResponseError: NOGROUP No such key",
    )
    path.write_text("{half")
    ready, why = check(str(path), 30)
    assert not ready
    assert why.startswith(f"not ready: unreadable state in {path}")


def test_successes_are_written_at_most_once_per_period(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    state = ConsumeState(str(path), every=3600)
    state.consumed()
    first = json.loads(path.read_text())["consumed_at"]
    time.sleep(0.01)
    state.consumed()  # within `every`, and nothing changed: not rewritten
    assert json.loads(path.read_text())["consumed_at"] == first
    ConsumeState("").consumed()  # an empty path disables the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready"]


def test_the_command_exits_0_when_ready_and_1_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    missing = _probe(path, 30)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"not ready: the worker has not started (no {path})",
    )
    ConsumeState(str(path)).consumed()
    ready = _probe(path, 30)
    assert ready.returncode == 0
    assert ready.stdout.startswith("ready: last read from the queue")


@pytest.mark.slow
async def test_a_worker_that_cannot_reach_redis_is_not_ready_until_it_can(
    pg_stack: dict, tmp_path: Path
) -> None:
    target = urlsplit(str(pg_stack["redis_url"]))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    path = tmp_path / "worker-ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_service.worker"],
        env=_env(
            DATABASE_URL=str(pg_stack["database_url"]),
            REDIS_URL=f"redis://127.0.0.1:{proxy.port}{target.path}",
            WORKER_READY_FILE=str(path),
            WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: _probe(path, 3).returncode == 0, timeout=30, every=0.2)
        await proxy.cut()  # Redis unreachable: the loop turns but consumes nothing
        down = await eventually(
            lambda: (p := _probe(path, 3)).returncode == 1 and p, timeout=30, every=0.5
        )
        assert down.stderr.startswith("not ready: no read from the queue for "), down.stderr
        assert "; last error: " in down.stderr
        await proxy.start()  # back on the same address: ready again, no restart
        await eventually(lambda: _probe(path, 3).returncode == 0, timeout=30, every=0.2)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        await proxy.cut()
