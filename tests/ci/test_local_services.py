"""scripts/local-services.sh: each checkout gets its own loopback servers, never another's.

Two throwaway "checkouts" (a copy of the script each) ask for the same ports: the second must get
servers of its own on other ports, `stop` must stop only the caller's servers, and `run` must stop
what it started and nothing it found running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local-services.sh"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def redis_dir(port: int) -> str:
    done = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw", "CONFIG", "GET", "dir"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()[1]


def pg_data_directory(port: int) -> str:
    psql = Path(pg_bindir()) / "psql"
    done = subprocess.run(
        [str(psql), "-X", "-tA", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
         "-d", "postgres", "-c", "SHOW data_directory"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def pg_bindir() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        if (Path(out.stdout.strip()) / "initdb").exists():
            return out.stdout.strip()
    assert found, "PostgreSQL is not installed: `make test` installs it (as root)"
    return str(found[-1].parent)


@dataclass
class Checkout:
    """A directory with its own copy of the script, as a clone of the repository would have."""

    root: Path
    ports: dict[str, str]

    def services(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["bash", str(self.root / "scripts" / "local-services.sh"), *args],
            capture_output=True, text=True, timeout=180, check=False,
            env={**os.environ, **self.ports},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def env_file(self) -> dict[str, str]:
        lines = (self.root / ".local" / "services.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")

    @property
    def pg_data(self) -> str:
        return str(self.root / ".local" / "pg" / "data")

    @property
    def redis_data(self) -> str:
        return str(self.root / ".local" / "redis")


@pytest.fixture(scope="module")
def wanted() -> dict[str, str]:
    pg = free_port()
    redis = next(p for p in iter(free_port, None) if abs(p - pg) > 10)
    return {"PG_PORT": str(pg), "REDIS_PORT": str(redis)}


@pytest.fixture(scope="module")
def checkouts(wanted: dict[str, str]) -> Iterator[tuple[Checkout, Checkout]]:
    # Readable by the postgres user, which runs the server when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="agent-services-test-"))
    base.chmod(0o755)
    made = []
    for name in ("a", "b"):
        (base / name / "scripts").mkdir(parents=True)
        shutil.copy2(SCRIPT, base / name / "scripts" / "local-services.sh")
        made.append(Checkout(base.resolve() / name, dict(wanted)))
    yield made[0], made[1]
    for checkout in made:
        # With the test's ports: a stop must never be pointed at the default (shared) ports.
        subprocess.run(
            ["bash", str(checkout.root / "scripts" / "local-services.sh"), "stop"],
            capture_output=True, timeout=120, check=False, env={**os.environ, **checkout.ports},
        )  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)


def test_a_second_checkout_gets_servers_of_its_own_and_says_why(checkouts, wanted):
    a, b = checkouts
    a.services("start")
    assert a.env_file()["PG_PORT"] == wanted["PG_PORT"]
    assert a.env_file()["REDIS_PORT"] == wanted["REDIS_PORT"]

    told = b.services("start")
    b_pg, b_redis = int(b.env_file()["PG_PORT"]), int(b.env_file()["REDIS_PORT"])
    assert b_pg != int(wanted["PG_PORT"]) and b_redis != int(wanted["REDIS_PORT"])
    assert b.env_file()["TEST_DATABASE_URL"] == (
        f"postgresql+asyncpg://agent:agent@127.0.0.1:{b_pg}/agent"
    )
    assert b.env_file()["TEST_REDIS_URL"] == f"redis://127.0.0.1:{b_redis}/0"
    # Each server is the one of its checkout, by its own account.
    assert pg_data_directory(int(wanted["PG_PORT"])) == a.pg_data
    assert pg_data_directory(b_pg) == b.pg_data
    assert redis_dir(int(wanted["REDIS_PORT"])) == a.redis_data
    assert redis_dir(b_redis) == b.redis_data
    # ...and the second checkout was told whose servers hold the ports it wanted.
    assert f"port {wanted['PG_PORT']} is held by the postgresql of checkout {a.root}" in told.stderr
    assert f"port {wanted['REDIS_PORT']} is held by the redis of checkout {a.root}" in told.stderr

    b.services("stop")
    assert not listening(b_pg) and not listening(b_redis)
    assert listening(int(wanted["PG_PORT"])) and listening(int(wanted["REDIS_PORT"]))
    a.services("stop")
    assert not listening(int(wanted["PG_PORT"])) and not listening(int(wanted["REDIS_PORT"]))


def test_stop_never_stops_a_server_of_another_checkout(checkouts, wanted):
    a, b = checkouts
    a.services("start")
    try:
        # b believes (stale state) that its Redis listens where a's does.
        (Path(b.redis_data)).mkdir(parents=True, exist_ok=True)
        (Path(b.redis_data) / "port").write_text(wanted["REDIS_PORT"] + "\n")
        b.services("stop")
        assert redis_dir(int(wanted["REDIS_PORT"])) == a.redis_data
        assert pg_data_directory(int(wanted["PG_PORT"])) == a.pg_data
    finally:
        a.services("stop")


def test_run_stops_what_it_started_and_leaves_running_servers_alone(checkouts, wanted, tmp_path):
    a, _ = checkouts
    seen = tmp_path / "seen"
    probe = f'echo "$TEST_DATABASE_URL $TEST_REDIS_URL" > {seen}'
    a.services("run", "bash", "-c", probe)
    assert seen.read_text().split() == [
        f"postgresql+asyncpg://agent:agent@127.0.0.1:{wanted['PG_PORT']}/agent",
        f"redis://127.0.0.1:{wanted['REDIS_PORT']}/0",
    ]
    assert not listening(int(wanted["PG_PORT"])) and not listening(int(wanted["REDIS_PORT"]))
    assert not (a.root / ".local" / "pg" / "data" / "postmaster.pid").exists()

    a.services("start")
    try:
        a.services("run", "bash", "-c", probe)
        assert listening(int(wanted["PG_PORT"])) and listening(int(wanted["REDIS_PORT"]))
    finally:
        a.services("stop")


def test_run_passes_on_the_exit_status_of_the_command_and_still_stops_both(checkouts, wanted):
    a, _ = checkouts
    done = subprocess.run(
        ["bash", str(a.root / "scripts" / "local-services.sh"), "run", "bash", "-c", "exit 7"],
        capture_output=True, text=True, timeout=180, check=False, env={**os.environ, **a.ports},
    )  # fmt: skip
    assert done.returncode == 7, done.stdout + done.stderr
    # A failed test run must not leave a server behind: in the EXIT trap a bare `return`
    # answers with the command's status, which once made Redis look like another's.
    assert "redis of this checkout stopped" in done.stderr + done.stdout
    assert not listening(int(wanted["PG_PORT"])) and not listening(int(wanted["REDIS_PORT"]))
