"""`python -m infra render`: the documented artifact, deterministic, clear config errors."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from infra.__main__ import main
from infra.offline.mocking import Graph, RecordedResource, wrap_secret
from infra.offline.render import kubernetes_manifest, manifest_filename, write
from infra.offline.stackfiles import SECURE_PLACEHOLDER, load
from tests.infra.pulumi_harness import ROOT, run_program


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render(stack: str, out: Path, project_dir: Path = ROOT) -> dict:
    assert (
        main(["render", "--stack", stack, "--out", str(out), "--project-dir", str(project_dir)])
        == 0
    )
    return json.loads((out / "resources.json").read_text())


def project_with(tmp_path: Path, stack: str, config_lines: list[str]) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    body = "config:\n  aws:region: us-east-1\n" + "".join(f"  {line}\n" for line in config_lines)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(body)
    return tmp_path


def of_type(document: dict, token: str) -> list[dict]:
    return [r for r in document["resources"] if r["type"] == token]


def test_the_cli_writes_the_documented_artifact_and_a_summary(tmp_path):
    result = run_cli("render", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "1  aws:ec2/natGateway:NatGateway" in result.stdout
    assert "9  aws:ec2/subnet:Subnet" in result.stdout
    document = json.loads((tmp_path / "out" / "resources.json").read_text())
    assert set(document) == {"project", "stack", "resources", "outputs"}
    assert (document["project"], document["stack"]) == ("agent-platform", "dev")
    names = {r["name"] for r in document["resources"]}
    for resource in document["resources"]:
        assert set(resource) == {"type", "name", "parent", "inputs"}
        assert resource["parent"] is None or resource["parent"] in names
    assert (tmp_path / "out" / "manifests").is_dir()


def test_a_config_error_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    project = project_with(tmp_path, "dev", ["agent-platform:vpcCidr: 10.0.0.0/33"])
    result = run_cli("render", "--stack", "dev", "--out", str(tmp_path / "out"), cwd=project)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: agent-platform:vpcCidr: '10.0.0.0/33' is not valid; allowed: an RFC 1918 "
        "IPv4 network with prefix /16 to /20, e.g. 10.0.0.0/16"
    ]
    assert not (tmp_path / "out" / "resources.json").exists()


@pytest.mark.parametrize(
    ("line", "key"),
    [("agent-platform:azCount: 1", "azCount"), ("agent-platform:nodeMinSize: 5", "nodeMinSize")],
)
def test_config_errors_name_the_key(tmp_path, capsys, line, key):
    project = project_with(tmp_path, "dev", [line])
    assert main(["render", "--stack", "dev", "--out", str(tmp_path / "o"),
                 "--project-dir", str(project)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith(f"error: agent-platform:{key}: ") and err.count("\n") == 1


def test_prod_render_has_the_highly_available_secure_data_stores(tmp_path):
    document = render("prod", tmp_path)
    assert len(of_type(document, "aws:ec2/natGateway:NatGateway")) == 3
    (db,) = of_type(document, "aws:rds/instance:Instance")
    assert db["inputs"]["multiAz"] is True
    assert db["inputs"]["deletionProtection"] is True
    assert db["inputs"]["storageEncrypted"] is True
    assert db["inputs"]["manageMasterUserPassword"] is True
    assert db["inputs"]["publiclyAccessible"] is False
    (group,) = of_type(document, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert group["inputs"]["atRestEncryptionEnabled"] is True
    assert group["inputs"]["transitEncryptionEnabled"] is True
    assert group["inputs"]["authToken"] == "[secret]"
    assert document["outputs"]["redisAuthToken"] == "[secret]"
    assert db["parent"] == "database"


def test_the_prod_render_lists_the_cluster_its_add_ons_and_the_workload(tmp_path):
    result = run_cli("render", "--stack", "prod", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    for line in (
        "1  eks:index:Cluster",
        "1  eks:index:ManagedNodeGroup",
        "2  aws:eks/addon:Addon",  # coredns, metrics-server
        # load balancer controller, cluster autoscaler, kube-state-metrics, Fluent Bit, KEDA
        "5  kubernetes:helm.sh/v3:Release",
        "2  kubernetes:apps/v1:Deployment",
        "1  kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
        "2  kubernetes:keda.sh/v1alpha1:ScaledObject",
        "2  kubernetes:keda.sh/v1alpha1:TriggerAuthentication",
    ):
        assert line in result.stdout
    document = json.loads((tmp_path / "out" / "resources.json").read_text())
    secrets = of_type(document, "kubernetes:core/v1:Secret")  # the workload's, KEDA's Redis
    assert [s["inputs"]["stringData"] for s in secrets] == ["[secret]", "[secret]"]
    assert document["outputs"]["kubeconfig"] == "[secret]"
    # the workload's 19 objects, KEDA's 5 (two ScaledObjects, two TriggerAuthentications, their
    # Secret), Karpenter's EC2NodeClass and its two NodePools
    assert len(list((tmp_path / "out" / "manifests").iterdir())) == 27


def test_dev_render_has_one_nat_gateway(tmp_path):
    assert len(of_type(render("dev", tmp_path), "aws:ec2/natGateway:NatGateway")) == 1


def test_the_render_is_byte_for_byte_deterministic(tmp_path):
    render("prod", tmp_path / "a")
    render("prod", tmp_path / "b")
    first = (tmp_path / "a" / "resources.json").read_bytes()
    assert first == (tmp_path / "b" / "resources.json").read_bytes()
    document = json.loads(first)
    keys = [(r["type"], r["name"]) for r in document["resources"]]
    assert keys == sorted(keys)


def test_review_stacks_render_without_a_stack_file(tmp_path):
    document = render("pr-17", tmp_path)
    assert document["stack"] == "pr-17"
    assert len(of_type(document, "aws:ec2/natGateway:NatGateway")) == 1


def test_an_unknown_stack_without_a_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["render", "--stack", "feature-x", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: Pulumi.feature-x.yaml: not found; stacks are dev, staging, prod (with a stack "
        "file) or pr-<n> review stacks\n"
    )


def test_secure_values_become_a_secret_placeholder(tmp_path):
    project = project_with(tmp_path, "dev", ["agent-platform:apiKeys:", "    secure: AAABAJ0x=="])
    files = load(project, "dev")
    assert files.config["agent-platform:apiKeys"] == SECURE_PLACEHOLDER
    assert "agent-platform:apiKeys" in files.secret_keys
    assert files.config["agent-platform:azCount"] == "3"  # project default applied
    render("dev", tmp_path / "out", project)


# --- Kubernetes manifests from recorded resources -----------------------------------------------


def fake(token: str, name: str, inputs: dict) -> RecordedResource:
    return RecordedResource(token, name, f"urn:{name}", None, True, None, inputs)


def test_a_deployment_record_becomes_its_manifest():
    record = fake(
        "kubernetes:apps/v1:Deployment",
        "api",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "agent-api", "namespace": "agent"},
            "spec": {"replicas": 3.0, "template": {"spec": {"containers": [
                {"name": "api", "env": [{"name": "API_KEYS", "value": wrap_secret("k-1")}],
                 "ports": [{"containerPort": 8000.0}]}]}}},
        },
    )  # fmt: skip
    manifest = kubernetes_manifest(record)
    assert manifest["apiVersion"] == "apps/v1" and manifest["kind"] == "Deployment"
    assert manifest["metadata"] == {"name": "agent-api", "namespace": "agent"}
    assert manifest["spec"]["replicas"] == 3
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "API_KEYS", "value": "[secret]"}]
    assert container["ports"] == [{"containerPort": 8000}]
    assert manifest_filename(manifest) == "agent_deployment_agent-api.yaml"


def test_core_objects_get_v1_and_unnamed_objects_their_logical_name():
    manifest = kubernetes_manifest(fake("kubernetes:core/v1:Namespace", "agent-ns", {}))
    assert manifest == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agent-ns"}}
    assert manifest_filename(manifest) == "cluster_namespace_agent-ns.yaml"


@pytest.mark.parametrize(
    "token",
    ["pulumi:providers:kubernetes", "kubernetes:helm.sh/v3:Release", "aws:ec2/vpc:Vpc",
     "kubernetes:yaml/v2:ConfigGroup"],
)  # fmt: skip
def test_non_objects_have_no_manifest(token):
    assert kubernetes_manifest(fake(token, "x", {"metadata": {"name": "x"}})) is None


def test_write_puts_one_file_per_object_and_drops_stale_ones(tmp_path):
    stale = tmp_path / "manifests" / "old.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Old\n")
    secret = {
        "metadata": {"name": "keys", "namespace": "agent"},
        "stringData": wrap_secret({"API_KEYS": "k"}),
    }
    graph = Graph(
        "agent-platform",
        "dev",
        (
            fake("kubernetes:core/v1:Namespace", "ns", {"metadata": {"name": "agent"}}),
            fake("kubernetes:core/v1:Secret", "keys", secret),
        ),
    )
    write(graph, tmp_path)
    files = sorted(p.name for p in (tmp_path / "manifests").iterdir())
    assert files == ["agent_secret_keys.yaml", "cluster_namespace_agent.yaml"]
    text = (tmp_path / "manifests" / "agent_secret_keys.yaml").read_text()
    # Keys stay (the manifest keeps a Secret's shape and validates), values do not.
    assert "stringData:\n  API_KEYS: '[secret]'\n" in text and "'k'" not in text


def test_config_docs_prints_the_pulumi_yaml_block_and_the_readme_table(capsys):
    assert main(["config-docs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("config:\n  aws:region:\n")
    assert "| `vpcCidr` | string | 10.0.0.0/16 | 10.0.0.0/16 | 10.0.0.0/16 |" in out


def test_the_pulumi_entry_point_exports_every_stack_output(monkeypatch):
    exported: dict = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))

    def program():
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return exported

    graph = run_program("prod", program=program)
    assert set(graph.outputs) >= {
        "vpcId", "publicSubnetIds", "privateSubnetIds", "databaseSubnetIds", "albDnsName",
        "albUrl", "targetGroupArn", "dbEndpoint", "dbSecretArn", "redisPrimaryEndpoint",
        "redisAuthToken", "clusterName", "kubeconfig", "oidcProviderArn", "ecrRepositoryUrl",
        "serviceUrl", "namespace", "region", "dbInstanceIdentifier", "cacheReplicationGroupId",
    }  # fmt: skip
    assert {"redisAuthToken", "kubeconfig", "apiKeys"} <= graph.secret_outputs
