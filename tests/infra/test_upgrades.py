"""Upgrades: nodes and add-ons follow the Kubernetes version at versions pinned per version, the
EKS support policy is explicit, and the preview stops before the version's support ends."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date
from pathlib import Path

import pytest

from infra.config import kubernetes
from infra.config.loader import utc_today
from infra.offline.mocking import Recorder
from infra.offline.render import render
from tests.infra.pulumi_harness import ROOT, config_error, run_program

CLUSTER = "eks:index:Cluster"
NODES = "eks:index:ManagedNodeGroup"
ADDON = "aws:eks/addon:Addon"

# What each minor runs with (the AL2023 release of the nodes, the four EKS add-ons).
PINS = {
    "1.35": {
        "node": "1.35.6-20260714",
        "vpc-cni": "v1.23.2-eksbuild.1",
        "kube-proxy": "v1.35.3-eksbuild.29",
        "coredns": "v1.14.6-eksbuild.4",
        "metrics-server": "v0.9.0-eksbuild.11",
    },
    "1.36": {
        "node": "1.36.3-20260903",
        "vpc-cni": "v1.23.2-eksbuild.1",
        "kube-proxy": "v1.36.0-eksbuild.45",
        "coredns": "v1.14.7-eksbuild.11",
        "metrics-server": "v0.9.0-eksbuild.11",
    },
}


@pytest.mark.parametrize("version", ["1.35", "1.36"])
def test_the_node_group_follows_the_cluster_version_at_its_pinned_release(version):
    graph = run_program("prod", {"kubernetesVersion": version})
    assert graph.one(CLUSTER).get("version") == version
    nodes = graph.one(NODES)
    # A custom launch template makes pulumi-eks send no version: it must be explicit.
    assert nodes.get("launchTemplate")
    assert nodes.get("version") == version
    assert nodes.get("releaseVersion") == PINS[version]["node"]
    assert nodes.get("amiType") == "AL2023_x86_64_STANDARD"


@pytest.mark.parametrize("version", ["1.35", "1.36"])
def test_the_four_eks_add_ons_are_pinned_per_kubernetes_version(version):
    graph = run_program("dev", {"kubernetesVersion": version})
    cluster = graph.one(CLUSTER)
    assert cluster.get("vpcCniOptions") == {
        "enableNetworkPolicy": True,
        "addonVersion": PINS[version]["vpc-cni"],
        "resolveConflictsOnCreate": "OVERWRITE",
        "resolveConflictsOnUpdate": "OVERWRITE",
    }
    assert cluster.get("kubeProxyAddonOptions")["version"] == PINS[version]["kube-proxy"]
    versions = {a.get("addonName"): a.get("addonVersion") for a in graph.of_type(ADDON)}
    assert versions == {
        "coredns": PINS[version]["coredns"],
        "metrics-server": PINS[version]["metrics-server"],
    }


def test_no_version_is_looked_up_live():
    recorder = Recorder()
    run_program("dev", recorder=recorder)
    tokens = {call.token for call in recorder.invokes}
    assert not [t for t in tokens if "Addon" in t or t.startswith("aws:ssm") or "Ami" in t]


def test_every_allowed_version_has_a_complete_row():
    assert kubernetes.KUBERNETES_VERSIONS == ("1.35", "1.36")
    for version, release in kubernetes.RELEASES.items():
        assert release.version == version
        assert release.node_release.startswith(f"{version}.")
        assert release.kube_proxy.startswith(f"v{version}.")
        assert release.end_of_extended_support > release.end_of_standard_support


# --- support policy and calendar ----------------------------------------------------------


def test_the_support_policy_is_explicit_and_standard_by_default(graph):
    assert graph.one(CLUSTER).get("upgradePolicy") == {"supportType": "STANDARD"}
    extended = run_program("prod", {"upgradePolicy": "EXTENDED"})
    assert extended.one(CLUSTER).get("upgradePolicy") == {"supportType": "EXTENDED"}


def test_preview_fails_naming_the_date_60_days_before_standard_support_ends():
    # 2027-01-25 is 61 days before 1.35 leaves standard support (2027-03-27): still fine.
    run_program("dev", {"kubernetesVersion": "1.35"}, today=date(2027, 1, 25))
    message = config_error("prod", {"kubernetesVersion": "1.35"}, today=date(2027, 1, 26))
    assert message == (
        "agent-platform:kubernetesVersion: '1.35' leaves EKS standard support on 2027-03-27 "
        "(in 60 days), when EKS upgrades the control plane by itself (upgradePolicy STANDARD); "
        "allowed: a version with more than 60 days of support left: 1.36 (standard support to "
        "2027-08-02); upgrade one minor at a time (README: Upgrading Kubernetes)"
    )


def test_a_version_past_its_end_of_support_names_the_day_it_ended():
    message = config_error("dev", {"kubernetesVersion": "1.35"}, today=date(2027, 4, 1))
    assert message.startswith(
        "agent-platform:kubernetesVersion: '1.35' left EKS standard support on 2027-03-27, "
    )
    last = config_error("dev", {}, today=date(2027, 6, 3))  # the default, 1.36
    assert "'1.36' leaves EKS standard support on 2027-08-02 (in 60 days)" in last
    assert "none pinned yet: add the next minor to RELEASES" in last


def test_extended_support_runs_on_with_a_warning_until_near_its_end():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    engine = logging.getLogger("tests.infra.engine")
    engine.addHandler(handler)
    try:
        run_program("dev", {"kubernetesVersion": "1.35", "upgradePolicy": "EXTENDED"},
                    today=date(2027, 4, 1))  # fmt: skip
    finally:
        engine.removeHandler(handler)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert any("left EKS standard support on 2027-03-27" in w and "billed" in w for w in warnings)
    message = config_error(
        "dev", {"kubernetesVersion": "1.35", "upgradePolicy": "EXTENDED"}, today=date(2028, 2, 1)
    )
    assert "'1.35' leaves EKS extended support on 2028-03-27 (in 55 days)" in message


def test_the_default_version_has_more_than_60_days_of_support_left_today():
    # On the real date: when this fails, move DEFAULT_KUBERNETES_VERSION (and the stacks) on.
    default = kubernetes.DEFAULT_KUBERNETES_VERSION
    assert kubernetes.support_problem(default, "STANDARD", utc_today()) is None


# --- the runbook: one minor, rendered before and after ------------------------------------


def _project(tmp_path: Path, version: str) -> Path:
    project = tmp_path / version
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "Pulumi.staging.yaml").write_text(
        (ROOT / "Pulumi.staging.yaml").read_text()
        + f"  agent-platform:kubernetesVersion: '{version}'\n"
    )
    return project


def _inputs(out: Path) -> dict[tuple[str, str], dict]:
    document = json.loads((out / "resources.json").read_text())
    return {(r["type"], r["name"]): r["inputs"] for r in document["resources"]}


def test_the_upgrade_runbook_moves_control_plane_add_ons_and_nodes_by_one_minor(tmp_path):
    """README "Upgrading Kubernetes": staging on 1.35 sets kubernetesVersion 1.36."""
    today = date(2027, 1, 4)
    before_graph = render("staging", tmp_path / "out-1.35", _project(tmp_path, "1.35"), today)
    after_graph = render("staging", tmp_path / "out-1.36", _project(tmp_path, "1.36"), today)
    before, after = _inputs(tmp_path / "out-1.35"), _inputs(tmp_path / "out-1.36")
    assert before.keys() == after.keys()  # nothing created or deleted
    changed = {key[1] for key, inputs in after.items() if before[key] != inputs}
    assert changed == {
        "cluster-eks",  # control plane, vpc-cni and kube-proxy
        "cluster-coredns",  # metrics-server's pin is the same build on both minors
        "cluster-general",  # node group: version and AMI release
        "karpenter-node-class",  # its AMI alias: the same AL2023 build as the system group
        "workload-namespace",  # the Pod Security Standard version enforced
    }
    nodes = after[(NODES, "cluster-general")]
    assert (nodes["version"], nodes["releaseVersion"]) == ("1.36", "1.36.3-20260903")
    # Karpenter's nodes drift to the same AMI build and are replaced within their budgets.
    node_class = ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "karpenter-node-class")
    assert before[node_class]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    assert after[node_class]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260903"}]
    # The order a single `pulumi up` takes: control plane, then the node group (rolling, PDBs
    # respected) beside vpc-cni and kube-proxy, then CoreDNS and metrics-server.
    cluster, nodes = after_graph.one(CLUSTER), after_graph.one(NODES)
    assert after_graph.depends_on(nodes, cluster)
    for addon in after_graph.of_type(ADDON):
        assert after_graph.depends_on(addon, nodes)
    assert before_graph.one(CLUSTER).get("version") == "1.35"
