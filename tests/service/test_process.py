"""The container's commands as processes: clear start-up errors, serving on PORT, JSON access
logs, draining on SIGTERM, and the worker command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agent_service.__main__ import main as api_main
from agent_service.config import Settings

from bench.polling import eventually

from .conftest import AUTH, base_settings, run_app
from .fakes import FakeOpenAI


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS}
    env["METRICS_PORT"] = "0"  # see conftest._clean_environment
    env.update(values)
    return env


_SETTINGS = {name.upper() for name in Settings.model_fields} | {"HOSTNAME"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MODEL_BACKEND": "gpt"},
            "invalid environment: MODEL_BACKEND='gpt': Input should be 'local', 'openai' or "
            "'bedrock'",
        ),
        (
            {"PORT": "eighty"},
            "invalid environment: PORT='eighty': Input should be a valid integer, unable to "
            "parse string as an integer",
        ),
        (
            {"LOG_LEVEL": "LOUD"},
            "invalid environment: LOG_LEVEL='LOUD': Input should be 'DEBUG', 'INFO', 'WARNING', "
            "'ERROR' or 'CRITICAL'",
        ),
        (
            {"DATABASE_URL": "mysql://x"},
            "invalid environment: DATABASE_URL='mysql://x': must be a postgresql:// URL (leave "
            "it unset for the embedded SQLite database)",
        ),
        (
            {"RATE_LIMIT": "lots"},
            "invalid environment: RATE_LIMIT='lots': must look like '100/minute' (per "
            "second|minute|hour|day)",
        ),
        (
            {"MODEL_BACKEND": "openai"},
            "MODEL_URL: required when MODEL_BACKEND=openai (an OpenAI-compatible base URL such "
            "as https://api.openai.com/v1)",
        ),
        ({"API_KEYS": ""}, "invalid environment: API_KEYS: required (comma-separated client keys)"),
        (
            {"METRICS_PORT": "8000"},
            "METRICS_PORT=8000: must differ from PORT (8000): metrics are never served on the "
            "public port (0 disables them)",
        ),
        (
            {"METRICS_PORT": "65536"},
            "invalid environment: METRICS_PORT='65536': Input should be less than or equal to "
            "65535",
        ),
    ],
)
def test_invalid_environment_exits_with_one_clear_line(
    env: dict, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for name, value in {"API_KEYS": "k", **env}.items():
        monkeypatch.setenv(name, value)
    assert api_main() == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == expected
    assert captured.out == ""


def test_the_process_exits_2_on_a_bad_variable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent_service"],
        env=_env(API_KEYS="k", MAX_CONCURRENT_SESSIONS="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "invalid environment: MAX_CONCURRENT_SESSIONS='0': "
        "Input should be greater than or equal to 1\n"
    )


def test_the_worker_needs_redis() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent_service.worker"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "invalid environment: REDIS_URL: required by the worker "
        "(without Redis the API runs tasks in-process)"
    )


def test_the_worker_refuses_a_taken_metrics_port(pg_stack: dict) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104 - where the worker listens by default
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "agent_service.worker"],
            env=_env(
                DATABASE_URL=str(pg_stack["database_url"]),
                REDIS_URL=str(pg_stack["redis_url"]),
                METRICS_PORT=str(port),
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"METRICS_PORT={port}: cannot listen on 0.0.0.0:{port} (Address already in use); "
        "choose a free port, or 0 to serve no metrics"
    )


@pytest.fixture
def server(tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m agent_service` on a free port: embedded SQLite, the fake OpenAI model."""
    port = _free_port()
    env = _env(
        PORT=str(port),
        API_KEYS="test-key",
        SQLITE_PATH=str(tmp_path / "agent.db"),
        MODEL_BACKEND="openai",
        MODEL_URL=fake_openai.url,
        SHUTDOWN_DRAIN_SECONDS="1",
        HOSTNAME="proc-test",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_service"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # reaps the process and closes its pipe


async def _until_up(base: str, proc: subprocess.Popen) -> None:
    async def up() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{base}/health")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(up, timeout=30, every=0.1)


async def test_sigterm_drains_then_stops(
    server: tuple[str, subprocess.Popen], fake_openai: FakeOpenAI
) -> None:
    base, proc = server
    await _until_up(base, proc)
    fake_openai.delay = 1.0  # the model takes a second: the chat is in flight during SIGTERM
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=20) as client:
        sid = (await client.post("/v1/sessions")).json()["id"]
        chat = asyncio.create_task(
            client.post(f"/v1/sessions/{sid}/messages", json={"content": "finish me"})
        )
        await eventually(lambda: len(fake_openai.requests) == 1)
        proc.send_signal(signal.SIGTERM)
        draining = await client.get("/ready")
        assert draining.status_code == 503
        assert draining.json()["status"] == "draining"
        refused = await client.post("/v1/sessions")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "draining"
        finished = await chat
        assert finished.status_code == 200
        assert finished.json()["reply"]["content"] == "echo: finish me"
    output, _ = await asyncio.to_thread(proc.communicate, None, 20)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(lines) == len(output.splitlines()), output  # every line is JSON
    access = [entry for entry in lines if entry["logger"] == "agent_service.access"]
    chat_line = next(e for e in access if e["route"] == "/v1/sessions/{session_id}/messages")
    assert chat_line["status"] == 200
    assert chat_line["method"] == "POST"
    assert chat_line["duration_ms"] >= 1000
    assert len(chat_line["request_id"]) == 32
    assert any(e["msg"] == "agent service stopped" for e in lines)
    assert "test-key" not in output


async def test_worker_command_runs_tasks(pg_stack: dict) -> None:
    async with run_app(base_settings(**pg_stack)) as api:
        task = (await api.client.post("/v1/tasks", json={"prompt": "from the worker"})).json()
        env = _env(
            DATABASE_URL=str(pg_stack["database_url"]),
            REDIS_URL=str(pg_stack["redis_url"]),
            HOSTNAME="worker-proc",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent_service.worker"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:

            async def finished() -> dict | None:
                body = (await api.client.get(f"/v1/tasks/{task['id']}")).json()
                return body if body["status"] == "succeeded" else None

            try:
                done = await eventually(finished, timeout=30)
            finally:
                proc.send_signal(signal.SIGTERM)
                output, _ = await asyncio.to_thread(proc.communicate, None, 20)
            assert proc.returncode == 0, output
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert done["result"].startswith("Turn 1: you said 'from the worker'")
    messages = [json.loads(line)["msg"] for line in output.splitlines()]
    assert "worker started" in messages, output
    assert "worker stopped" in messages, output
