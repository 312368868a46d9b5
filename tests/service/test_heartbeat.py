"""The worker's heartbeat: the loop touches the file, the liveness command tells a turning loop
from a hung one (a stopped process) and from one that never started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_service.heartbeat import Heartbeat, age

from bench.polling import eventually

from .test_process import _env


def _check(path: Path, max_age: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent_service.heartbeat", "--max-age", str(max_age)],
        env=_env(WORKER_HEARTBEAT_FILE=str(path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_no_heartbeat_file_fails_the_check(tmp_path: Path) -> None:
    done = _check(tmp_path / "never-written", 60)
    assert done.returncode == 1
    assert "no heartbeat" in done.stderr


def test_an_old_heartbeat_fails_and_a_fresh_one_passes(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    Heartbeat(str(path)).beat()
    assert _check(path, 60).returncode == 0
    old = time.time() - 120
    os.utime(path, (old, old))
    stale = _check(path, 60)
    assert stale.returncode == 1
    assert "stale" in stale.stderr


def test_beats_are_throttled_and_an_empty_path_disables_them(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "hb"
    beat = Heartbeat(str(path), every=3600)
    beat.beat()  # creates the missing directory too
    old = time.time() - 120
    os.utime(path, (old, old))
    beat.beat()  # within `every`: no touch
    assert age(str(path)) >= 119
    Heartbeat("").beat()
    assert age(str(tmp_path / "hb")) is None


@pytest.mark.slow
async def test_the_worker_beats_until_its_loop_stops_turning(
    pg_stack: dict, tmp_path: Path
) -> None:
    path = tmp_path / "worker-heartbeat"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_service.worker"],
        env=_env(
            DATABASE_URL=str(pg_stack["database_url"]),
            REDIS_URL=str(pg_stack["redis_url"]),
            WORKER_HEARTBEAT_FILE=str(path),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: path.exists(), timeout=30)
        # Older than any single pass, yet the loop keeps it fresh: it is touched again.
        old = time.time() - 30
        os.utime(path, (old, old))
        await eventually(lambda: age(str(path)) < 5, timeout=10)
        assert _check(path, 5).returncode == 0
        proc.send_signal(signal.SIGSTOP)  # a hung loop: alive, but not turning
        await eventually(lambda: _check(path, 2).returncode == 1, timeout=15, every=0.5)
        proc.send_signal(signal.SIGCONT)
        await eventually(lambda: _check(path, 2).returncode == 0, timeout=15, every=0.2)
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
