"""Production must not serve plain HTTP nor open the Kubernetes API to everyone by default."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.pulumi_harness import ROOT, config_error, run_program

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
LISTENER = "aws:lb/listener:Listener"
CLUSTER = "eks:index:Cluster"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_without_a_certificate_stop_the_preview_naming_the_key(stack):
    assert config_error(stack, {"certificateArn": None}) == (
        f"agent-platform:certificateArn: empty in a {stack} stack; allowed: an ACM certificate "
        "ARN in aws:region (us-east-1), such as "
        "arn:aws:acm:us-east-1:123456789012:certificate/<id> (or allowPlainHttp true to serve "
        "plain HTTP)"
    )


def test_dev_and_review_stacks_may_serve_plain_http():
    for stack in ("dev", "pr-3"):
        (listener,) = run_program(stack).of_type(LISTENER)
        assert listener.get("protocol") == "HTTP"


def test_the_documented_opt_out_serves_plain_http_in_prod():
    graph = run_program("prod", {"certificateArn": None, "allowPlainHttp": True})
    (listener,) = graph.of_type(LISTENER)
    assert (listener.get("port"), listener.get("defaultActions")[0]["type"]) == (80, "forward")


def test_the_opt_out_with_a_certificate_is_a_contradiction():
    message = config_error("prod", {"certificateArn": CERT, "allowPlainHttp": True})
    assert message == (
        "agent-platform:allowPlainHttp: true while certificateArn is set; allowed: false "
        "(HTTP redirects to HTTPS)"
    )


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_stack_files_certificate_makes_http_only_redirect(stack):
    listeners = {x.get("port"): x for x in run_program(stack).of_type(LISTENER)}
    assert set(listeners) == {80, 443}
    (redirect,) = listeners[80].get("defaultActions")
    assert redirect["type"] == "redirect"
    assert redirect["redirect"]["protocol"] == "HTTPS"


def _render(project: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", "prod", "--out", str(out)],
        cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_make_render_of_prod_fails_in_one_line_without_a_certificate_and_renders_with_one(
    tmp_path,
):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    stack_file = (ROOT / "Pulumi.prod.yaml").read_text()
    without = "".join(
        line for line in stack_file.splitlines(keepends=True) if "certificateArn:" not in line
    )
    (project / "Pulumi.prod.yaml").write_text(without)
    failed = _render(project, tmp_path / "out")
    assert failed.returncode == 2
    assert failed.stdout == ""
    (line,) = failed.stderr.splitlines()
    assert line.startswith("error: agent-platform:certificateArn: empty in a prod stack")

    (project / "Pulumi.prod.yaml").write_text(stack_file)  # a certificate and API CIDRs
    rendered = _render(project, tmp_path / "out")
    assert rendered.returncode == 0, rendered.stderr
    assert "1  aws:lb/listener:Listener" not in rendered.stdout  # HTTP and HTTPS
    assert "2  aws:lb/listener:Listener" in rendered.stdout


# --- the Kubernetes API endpoint ----------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_have_no_default_api_allow_list(stack):
    assert config_error(stack, {"clusterPublicAccessCidrs": None}) == (
        "agent-platform:clusterPublicAccessCidrs: empty while clusterEndpointPublicAccess is "
        "true; allowed: the egress CIDRs of what runs `pulumi up`, such as "
        '["203.0.113.0/24"], or clusterEndpointPublicAccess false for a private endpoint only'
    )


def test_dev_keeps_a_public_endpoint_for_laptops():
    assert run_program("dev").one(CLUSTER).get("publicAccessCidrs") == ["0.0.0.0/0"]


def test_an_allow_list_without_a_public_endpoint_is_refused():
    message = config_error(
        "prod", {"clusterEndpointPublicAccess": False, "clusterPublicAccessCidrs": ["10.9.0.0/16"]}
    )
    assert message.startswith(
        "agent-platform:clusterPublicAccessCidrs: set while clusterEndpointPublicAccess is false"
    )


def test_a_private_endpoint_in_dev_drops_dev_s_default_allow_list():
    cluster = run_program("dev", {"clusterEndpointPublicAccess": False}).one(CLUSTER)
    assert cluster.get("endpointPublicAccess") is False
    assert "publicAccessCidrs" not in cluster.inputs


def test_more_cidrs_than_eks_accepts_are_refused():
    cidrs = [f"198.51.100.{i}/32" for i in range(41)]
    message = config_error("prod", {"clusterPublicAccessCidrs": cidrs})
    assert message == (
        "agent-platform:clusterPublicAccessCidrs: 41 CIDRs; allowed: at most 40 (EKS quota)"
    )
