"""Every rendered manifest validates at the cluster's Kubernetes version and passes checkov."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from infra.config import KEYS_BY_NAME
from infra.offline import crds
from infra.offline.render import write
from tests.infra.pulumi_harness import ROOT, graph_of

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
EXPECTED = {
    "cluster_namespace_agent.yaml",
    "agent_serviceaccount_agent-service.yaml",
    "agent_secret_workload-secrets.yaml",
    "agent_configmap_workload-config.yaml",
    "agent_job_workload-migrate.yaml",
    "agent_deployment_agent-api.yaml",
    "agent_deployment_agent-worker.yaml",
    "agent_service_agent-api.yaml",
    "agent_horizontalpodautoscaler_agent-api.yaml",
    "agent_horizontalpodautoscaler_agent-worker.yaml",
    "agent_poddisruptionbudget_agent-api.yaml",
    "agent_poddisruptionbudget_agent-worker.yaml",
    "agent_targetgroupbinding_agent-api.yaml",
    "agent_networkpolicy_default-deny.yaml",
    "agent_networkpolicy_allow-dns.yaml",
    "agent_networkpolicy_api-ingress.yaml",
    "agent_networkpolicy_metrics-ingress.yaml",
    "agent_networkpolicy_app-egress.yaml",
    "agent_networkpolicy_migrate-egress.yaml",
    "agent_scaledobject_agent-api.yaml",
    "agent_scaledobject_agent-worker.yaml",
    "agent_triggerauthentication_redis.yaml",
    "agent_triggerauthentication_aws.yaml",
    "agent_secret_keda-redis.yaml",
    "cluster_ec2nodeclass_default.yaml",
    "cluster_nodepool_api.yaml",
    "cluster_nodepool_workers.yaml",
}
# Manifests kubernetes-validate has no schema for, and the vendored CRDs (infra/components/crds/)
# that validate them instead.
CUSTOM_RESOURCES = {
    "agent_targetgroupbinding_agent-api.yaml": "aws-load-balancer-controller-3.5.0",
    "agent_scaledobject_agent-api.yaml": "keda-2.20.2",
    "agent_scaledobject_agent-worker.yaml": "keda-2.20.2",
    "agent_triggerauthentication_redis.yaml": "keda-2.20.2",
    "agent_triggerauthentication_aws.yaml": "keda-2.20.2",
    "cluster_ec2nodeclass_default.yaml": "karpenter-1.14.1",
    "cluster_nodepool_api.yaml": "karpenter-1.14.1",
    "cluster_nodepool_workers.yaml": "karpenter-1.14.1",
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def manifests(request, tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(f"render-{request.param}")
    write(graph_of(request.param), out)
    return request.param, out / "manifests"


def load(directory: Path) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


def test_the_render_writes_every_object_of_the_workload(manifests):
    _, directory = manifests
    assert set(load(directory)) == EXPECTED


def validate_strictly(obj: dict, version: str) -> str:
    """Built-in kinds with kubernetes-validate, custom resources against the vendored CRDs.

    Returns which validated it; a custom resource whose CRD is not vendored raises
    CrdNotVendored, and one whose CRD has a rule that cannot run here fails too.
    """
    try:
        kubernetes_validate.validate(obj, version, strict=True)
        return "kubernetes"
    except SchemaNotFoundError:
        report = crds.validate(obj)
        assert report.errors == [], f"{obj['kind']}/{obj['metadata']['name']}: {report.errors}"
        assert report.unchecked == [], f"rules that could not run: {report.unchecked}"
        return crds.crd_for(obj["apiVersion"], obj["kind"]).source


def test_every_manifest_validates_strictly_at_the_clusters_version(manifests):
    stack, directory = manifests
    version = KEYS_BY_NAME["kubernetesVersion"].default(stack)
    assert graph_of(stack).one("eks:index:Cluster").get("version") == version
    by = {name: validate_strictly(obj, version) for name, obj in load(directory).items()}
    assert by == {name: CUSTOM_RESOURCES.get(name, "kubernetes") for name in EXPECTED}


def test_a_custom_resource_is_checked_against_its_crd(manifests):
    _, directory = manifests
    binding = load(directory)["agent_targetgroupbinding_agent-api.yaml"]
    binding["spec"]["targetType"] = "pod"
    with pytest.raises(AssertionError, match="'pod' is not one of \\['instance', 'ip'\\]"):
        validate_strictly(binding, "1.36")


def test_the_scaledobjects_run_the_crds_cel_rules(manifests):
    stack, directory = manifests
    worker = load(directory)["agent_scaledobject_agent-worker.yaml"]
    assert worker["metadata"]["annotations"] == {
        "scaledobject.keda.sh/transfer-hpa-ownership": "true"
    }
    assert worker["spec"]["minReplicaCount"] == {"dev": 1, "prod": 2}[stack]
    worker["spec"]["minReplicaCount"] = 11  # above maxReplicaCount (prod 10, dev 2)
    with pytest.raises(AssertionError, match="minReplicaCount must be less than or equal"):
        validate_strictly(worker, "1.36")
    api = load(directory)["agent_scaledobject_agent-api.yaml"]
    api["spec"]["triggers"][2]["authenticationRef"]["kind"] = "SecretTriggerAuthentication"
    with pytest.raises(AssertionError, match="SecretTriggerAuthentication"):
        validate_strictly(api, "1.36")


def test_karpenter_resources_are_checked_by_the_crds_cel_rules(manifests):
    _, directory = manifests
    node_class = load(directory)["cluster_ec2nodeclass_default.yaml"]
    node_class["spec"]["amiSelectorTerms"] = [{"alias": "al2023@latest", "id": "ami-0123456789"}]
    with pytest.raises(AssertionError, match="'alias' is mutually exclusive"):
        validate_strictly(node_class, "1.36")
    pool = load(directory)["cluster_nodepool_api.yaml"]
    pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]}
    )
    with pytest.raises(AssertionError, match=r'label "karpenter\.sh/nodepool" is restricted'):
        validate_strictly(pool, "1.36")


def test_a_custom_resource_without_a_vendored_crd_fails():
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "agent-api", "namespace": "agent"},
        "spec": {"endpoints": [{"port": "http"}]},
    }
    with pytest.raises(crds.CrdNotVendored, match=r"monitoring\.coreos\.com/v1 ServiceMonitor"):
        validate_strictly(monitor, "1.36")


def test_a_typo_fails_strict_validation(manifests):
    _, directory = manifests
    deployment = load(directory)["agent_deployment_agent-api.yaml"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.36", strict=True)


def test_secrets_render_as_placeholders_that_still_validate(manifests):
    _, directory = manifests
    secret = load(directory)["agent_secret_workload-secrets.yaml"]
    assert set(secret["stringData"].values()) == {"[secret]"}


def test_checkov_finds_nothing_beyond_the_justified_skips(manifests):
    _, directory = manifests
    assert CHECKOV.is_file(), "run `make setup`: checkov lives in .venv-checkov"
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--config-file", str(ROOT / ".checkov.yaml"),
         "-d", str(directory), "--framework", "kubernetes", "-o", "json"],
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]
    ]  # fmt: skip
    assert failed == [] and summary["failed"] == 0
    assert summary["passed"] > 200
    config = (ROOT / ".checkov.yaml").read_text()
    assert "skip-check:\n" in config and "- CKV_K8S_35\n" in config
    # No object skips a check; CKV_K8S_35 is off for all in .checkov.yaml, with its reason.
    assert report["results"].get("skipped_checks", []) == []
    assert summary["skipped"] == 0
