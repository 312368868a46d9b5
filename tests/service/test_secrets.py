"""DB_SECRET_ARN: credentials from Secrets Manager (moto), re-read once after a rotation.

PostgreSQL must really check passwords for this, and the shared test server trusts loopback,
so this module starts its own small cluster with scram-sha-256 authentication.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import boto3
import pytest
from agent_service.storage.secrets import SecretCredentials
from moto import mock_aws

from .conftest import base_settings, run_app

ADMIN_PASSWORD = "admin-pw"


def _pg_bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True)
        if (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not candidates:
        pytest.fail("PostgreSQL server binaries not found; run `make services` to install them")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scram_postgres() -> Iterator[int]:
    """A throwaway PostgreSQL that checks passwords; yields its port."""
    bindir = _pg_bindir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="agent-scram-"))
    pwfile = base / "pw"
    pwfile.write_text(ADMIN_PASSWORD)
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(pwfile, "postgres")
    data, port = base / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    run(
        str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
        f"--pwfile={pwfile}", "-E", "UTF8",
    )  # fmt: skip
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} -c fsync=off"
    )
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(base / "log"),
        "-w",
        "-o",
        options,
        "start",
    )
    try:
        yield port
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


async def _admin(port: int, sql: str) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user="postgres", password=ADMIN_PASSWORD, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


async def test_credentials_come_from_the_secret_and_survive_rotation(
    scram_postgres: int, aws: None
) -> None:
    port = scram_postgres
    await _admin(port, "CREATE ROLE app LOGIN PASSWORD 'first-pw'")
    await _admin(port, "CREATE DATABASE app OWNER app")
    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = sm.create_secret(
        Name="rds!db-agent", SecretString=json.dumps({"username": "app", "password": "first-pw"})
    )["ARN"]

    settings = base_settings(
        db_secret_arn=arn,
        db_host="127.0.0.1",
        db_port=port,
        db_name="app",
        db_sslmode="disable",
        aws_region="eu-west-1",
    )
    assert not settings.embedded
    # The platform's migration Job: `python -m agent_service.migrate` with the same settings.
    migrate_env = {
        **os.environ,
        "DB_SECRET_ARN": arn,
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(port),
        "DB_NAME": "app",
        "DB_SSLMODE": "disable",
    }
    secrets = SecretCredentials(arn, region="eu-west-1")
    async with run_app(settings, secrets=secrets) as api:
        # The API does not migrate PostgreSQL: not ready until the Job has run.
        unmigrated = await api.client.get("/ready")
        assert unmigrated.status_code == 503
        assert unmigrated.json()["checks"]["database"] == {
            "status": "down",
            "error": "ProgrammingError",
        }
        await asyncio.to_thread(_migrate_in_process, migrate_env)
        assert (await api.client.get("/ready")).status_code == 200
        created = await api.client.post("/v1/sessions")
        assert created.status_code == 201
        assert secrets.reads == 1

        # Rotation: the role's password and the secret change; pooled connections stay valid.
        await _admin(port, "ALTER ROLE app PASSWORD 'second-pw'")
        sm.put_secret_value(
            SecretId=arn, SecretString=json.dumps({"username": "app", "password": "second-pw"})
        )
        sid = created.json()["id"]
        assert (await api.client.get(f"/v1/sessions/{sid}")).status_code == 200
        assert secrets.reads == 1
        # New connections fail with the cached password once, re-read the secret, and succeed.
        await api.app.state.engine.dispose()
        assert (await api.client.get(f"/v1/sessions/{sid}")).status_code == 200
        assert secrets.reads == 2
        assert (await secrets.get()).password == "second-pw"
        assert "second-pw" not in repr(await secrets.get())

        # A secret that is simply wrong: 503, not a crash, and no endless re-reading.
        await _admin(port, "ALTER ROLE app PASSWORD 'third-pw'")
        await api.app.state.engine.dispose()
        down = await api.client.get(f"/v1/sessions/{sid}")
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "database_unavailable"
        assert secrets.reads == 3
        ready = (await api.client.get("/ready")).json()
        assert ready["checks"]["database"]["status"] == "down"


def _migrate_in_process(env: dict[str, str]) -> None:
    """Run the migrate command's main() with the Job's environment (moto is active here)."""
    from agent_service import migrate

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        assert migrate.main([]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
