"""`python -m infra verify` against a stack in moto and the real service on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from infra.__main__ import main
from tests.verify.verify_support import API_KEY, ROOT, free_port

DEADLINE = 2
FAST = ["--deadline", str(DEADLINE), "--interval", "0.05"]
CHECKS = [
    "eks-cluster",
    "eks-nodegroup {name}-general",
    "rds",
    "elasticache",
    "alb",
    "alb-targets",
    "http-health",
    "http-ready",
    "http-session",
]


def run_verify(stack, outputs_file, capsys, *extra: str) -> tuple[int, list[str]]:
    code = main(["verify", "--stack", stack.name, "--outputs", str(outputs_file), *FAST, *extra])
    return code, capsys.readouterr().out.splitlines()


def verdicts(lines: list[str]) -> dict[str, str]:
    """check name -> PASS/FAIL, from the `PASS name: detail` lines."""
    return {
        line.split(" ", 1)[1].split(":", 1)[0]: line.split(" ", 1)[0]
        for line in lines
        if line.startswith(("PASS ", "FAIL "))
    }


def test_a_healthy_stack_passes_every_check(stack, service_url, write_outputs, capsys):
    code, lines = run_verify(stack, write_outputs(stack.outputs(service_url)), capsys)
    assert code == 0, lines
    assert verdicts(lines) == {c.format(name=stack.name): "PASS" for c in CHECKS}
    assert f"PASS eks-cluster: cluster {stack.name} is ACTIVE" in lines
    assert f"PASS rds: {stack.name} is available, storage encrypted" in lines
    assert "PASS alb-targets: 1 healthy target(s) in " in "\n".join(lines)
    assert "PASS http-ready: GET /ready -> 200 (ready)" in lines
    assert lines[-1] == f"verify {stack.name}: 9/9 checks passed"


def test_an_unhealthy_target_fails_with_its_id_and_reason(
    stack, service_url, write_outputs, capsys
):
    group = stack.stopped_instance_target_group()
    outputs = write_outputs(stack.outputs(service_url, targetGroupArn=group))
    started = time.monotonic()
    code, lines = run_verify(stack, outputs, capsys)
    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert failed == [
        f"FAIL alb-targets: 1 of 2 targets not serving: {stack.stopped_instance}:8000 unused "
        "(Target.InvalidState: Target is in the stopped state)"
    ]
    assert time.monotonic() - started < DEADLINE + 10  # retried until the deadline, no longer
    assert lines[-1] == f"verify {stack.name}: 8/9 checks passed"


def test_an_unreachable_service_fails_within_the_deadline(stack, write_outputs, capsys):
    dead_url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, lines = run_verify(stack, write_outputs(stack.outputs(dead_url)), capsys)
    elapsed = time.monotonic() - started
    assert code == 1
    assert {k: v for k, v in verdicts(lines).items() if v == "FAIL"} == {
        "http-health": "FAIL",
        "http-ready": "FAIL",
        "http-session": "FAIL",
    }
    assert "FAIL http-health: ConnectError: " in "\n".join(lines)
    assert elapsed < DEADLINE + 10


def test_unencrypted_storage_fails_the_database_check(
    stack, aws, service_url, write_outputs, capsys
):
    aws("rds").create_db_instance(
        DBInstanceIdentifier=f"{stack.name}-plain",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="agent",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        StorageEncrypted=False,
    )
    outputs = stack.outputs(service_url, dbInstanceIdentifier=f"{stack.name}-plain")
    code, lines = run_verify(stack, write_outputs(outputs), capsys)
    assert code == 1
    assert f"FAIL rds: {stack.name}-plain is available, storage NOT encrypted" in lines


def test_node_groups_are_listed_when_the_output_is_absent(
    stack, service_url, write_outputs, capsys
):
    outputs = stack.outputs(service_url, nodeGroupNames=None)
    code, lines = run_verify(stack, write_outputs(outputs), capsys)
    assert code == 0, lines
    assert (
        f"PASS eks-nodegroup {stack.name}-general: node group {stack.name}-general is ACTIVE"
        in (lines)
    )


def test_missing_outputs_and_key_fail_their_checks(stack, service_url, write_outputs, capsys):
    outputs = stack.outputs(service_url, clusterName=None, apiKeys=None)
    code, lines = run_verify(stack, write_outputs(outputs), capsys)
    assert code == 1
    assert "FAIL eks-cluster: LookupError: stack output 'clusterName' is missing" in lines
    assert (
        "FAIL http-session: no API key: pass --api-key, set AGENT_API_KEY or output apiKeys"
        in lines
    )


def test_a_wrong_api_key_fails_the_session_check(stack, service_url, write_outputs, capsys):
    outputs = write_outputs(stack.outputs(service_url))
    code, lines = run_verify(stack, outputs, capsys, "--api-key", "not-a-client-key")
    assert code == 1
    assert "FAIL http-session: POST /v1/sessions -> 401 (want 201)" in lines


def test_the_command_line(stack, moto_url, service_url, write_outputs, tmp_path):
    outputs = write_outputs(stack.outputs(service_url, apiKeys=None))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AGENT_API_KEY": API_KEY,
    }
    command = [sys.executable, "-m", "infra", "verify", "--stack", stack.name]
    done = subprocess.run(
        [*command, "--outputs", str(outputs), *FAST],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == f"verify {stack.name}: 9/9 checks passed"

    missing = subprocess.run(
        [*command, "--outputs", str(tmp_path / "absent.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: cannot read ")
