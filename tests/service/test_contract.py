"""The contract the platform reads (service/contract.json): generated from the code and current,
holding the values the platform relies on, and every command in it runs."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from agent_service import contract

from bench.polling import eventually

from .test_process import _env

SERVICE = Path(__file__).resolve().parents[2] / "service"
CONTRACT_FILE = SERVICE / "contract.json"
REGENERATE = "venv/bin/python -m agent_service.contract --write service/contract.json"


@pytest.fixture(scope="module")
def published() -> dict:
    return json.loads(CONTRACT_FILE.read_text())


def test_the_committed_contract_is_current(tmp_path: Path) -> None:
    assert CONTRACT_FILE.read_text() == contract.render(), f"stale: run `{REGENERATE}`"
    written = tmp_path / "contract.json"
    done = subprocess.run(
        [sys.executable, "-m", "agent_service.contract", "--write", str(written)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert written.read_text() == CONTRACT_FILE.read_text()


def test_the_contract_holds_what_the_platform_relies_on(published: dict) -> None:
    assert published["port"] == 8000
    # The platform names this container port `metrics` and sets METRICS_PORT to it; the load
    # balancer reaches only "port".
    assert published["metrics_port"] == 9090
    assert (published["run_as_user"], published["run_as_group"]) == (10001, 10001)
    assert published["probes"] == {
        "liveness_path": "/health",
        "readiness_path": "/ready",
        "metrics_path": "/metrics",
    }
    env = published["environment"]
    assert env["secret"] == ["API_KEYS", "DATABASE_URL", "MODEL_API_KEY", "REDIS_URL"]
    assert set(env["secret"]) <= set(env["accepted"])
    assert env["accepted"] == sorted(env["accepted"])
    # The variables the platform sets today, and the task settings of the reliability work.
    for name in ("DB_SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME", "DB_SSLMODE", "AWS_REGION",
                 "MODEL_BACKEND", "LOG_LEVEL", "SHUTDOWN_DRAIN_SECONDS", "WORKER_READY_FILE",
                 "TASK_RECLAIM_IDLE_SECONDS", "WORKER_HEARTBEAT_FILE", "METRICS_PORT",
                 "KEEP_ALIVE_TIMEOUT_SECONDS", "SSE_KEEPALIVE_SECONDS"):  # fmt: skip
        assert name in env["accepted"], name
    database = [["DATABASE_URL"], ["DB_SECRET_ARN", "DB_HOST"]]
    assert published["requires"] == {
        "api": [[["API_KEYS"]], database, [["REDIS_URL"]]],
        "worker": [database, [["REDIS_URL"]]],
        "migrate": [database],
    }
    assert published["commands"] == {
        "api": ["python", "-m", "agent_service"],
        "worker": ["python", "-m", "agent_service.worker"],
        "migrate": ["python", "-m", "agent_service.migrate"],
        "worker_liveness": ["python", "-m", "agent_service.heartbeat", "--max-age", "60"],
        "worker_readiness": ["python", "-m", "agent_service.readiness", "--max-age", "30"],
    }


def test_every_accepted_variable_is_read_by_the_service(
    published: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each name is one the service reads: an invalid value for it is refused by name."""
    from agent_service.config import ConfigError, load_settings

    typed = {"PORT": "x", "DB_POOL_SIZE": "x", "REDIS_TIMEOUT": "x", "LOG_LEVEL": "x",
             "MODEL_BACKEND": "x", "DB_SSLMODE": "x", "TASK_RECLAIM_IDLE_SECONDS": "x",
             "DATABASE_URL": "mysql://x", "REDIS_URL": "http://x", "RATE_LIMIT": "x",
             "METRICS_PORT": "x", "SSE_KEEPALIVE_SECONDS": "x"}  # fmt: skip
    for name, bad in typed.items():
        assert name in published["environment"]["accepted"]
        monkeypatch.setenv(name, bad)
        with pytest.raises(ConfigError, match=f"invalid environment: {name}"):
            load_settings()
        monkeypatch.delenv(name)


def test_the_image_runs_as_the_contracts_user_and_port(published: dict) -> None:
    dockerfile = (SERVICE / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)\s*$", dockerfile, re.MULTILINE)
    assert users == [f"{published['run_as_user']}:{published['run_as_group']}"]
    exposed = re.findall(r"^EXPOSE\s+(\d+)\s*$", dockerfile, re.MULTILINE)
    assert exposed == [str(published["port"]), str(published["metrics_port"])]
    assert f"--uid {published['run_as_user']} --gid {published['run_as_group']}" in dockerfile


def _argv(command: list[str]) -> list[str]:
    assert command[0] == "python"  # the image puts its venv first on PATH
    return [sys.executable, *command[1:]]


@pytest.mark.parametrize(
    "name", ["api", "worker", "migrate", "worker_liveness", "worker_readiness"]
)
def test_every_command_exists(published: dict, name: str) -> None:
    command = published["commands"][name]
    done = subprocess.run(
        [*_argv(command), "--help"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {command[2]} "), done.stdout


@pytest.mark.slow
async def test_the_worker_command_passes_its_own_probes(
    published: dict, pg_stack: dict, tmp_path: Path
) -> None:
    commands = published["commands"]
    env = _env(
        DATABASE_URL=str(pg_stack["database_url"]),
        REDIS_URL=str(pg_stack["redis_url"]),
        WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        WORKER_READY_FILE=str(tmp_path / "ready"),
    )

    def probe(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            _argv(commands[name]), env=env, capture_output=True, text=True, timeout=30, check=False
        )

    assert probe("worker_readiness").returncode == 1  # nothing consumed yet
    proc = subprocess.Popen(
        _argv(commands["worker"]), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await eventually(lambda: probe("worker_readiness").returncode == 0, timeout=30, every=0.2)
        assert probe("worker_liveness").returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
