"""A deployed stack on loopback: AWS in a moto server, the agent service standing in for the ALB.

The moto server holds what a stack creates (EKS cluster and node group, encrypted RDS instance,
encrypted replication group, ALB with an `ip` target group and a registered target), created
with boto3 (verify_support.DeployedStack); the real agent service (embedded SQLite, local
model) serves on 127.0.0.1 where the ALB's URL would be.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import uvicorn
from moto.server import ThreadedMotoServer

from tests.verify.verify_support import API_KEY, REGION, STARTUP_TIMEOUT, DeployedStack, free_port


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch):
    """boto3 (and `infra.ops.verify`) pointed at the moto server with dummy credentials."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AGENT_API_KEY", raising=False)
    return lambda service: boto3.client(service, region_name=REGION)


@pytest.fixture(scope="session")
def service_url(tmp_path_factory) -> Iterator[str]:
    """The agent service on a free loopback port (stops with the session)."""
    from agent_service.app import create_app
    from agent_service.config import Settings

    settings = Settings(
        host="127.0.0.1",
        api_keys=API_KEY,
        sqlite_path=str(tmp_path_factory.mktemp("service") / "agent.db"),
        shutdown_drain_seconds=0,
        metrics_port=0,  # other test runs on the machine would meet on the default 9090
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)


_COUNTER = iter(range(1, 1000))


@pytest.fixture
def stack(aws) -> DeployedStack:
    """A freshly created stack (unique names: the moto server lives for the session)."""
    return DeployedStack(aws, f"agent-pr-{next(_COUNTER)}")


@pytest.fixture
def write_outputs(tmp_path):
    def write(outputs: dict) -> Path:
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(outputs))
        return path

    return write
