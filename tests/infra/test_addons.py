"""Cluster add-ons: pinned Helm charts, one narrowly trusted IAM role each, least privilege."""

from __future__ import annotations

import json

import pytest

from infra.components.addons import CLUSTER_AUTOSCALER_IMAGES, POLICIES
from infra.config import checks
from infra.offline.mocking import Graph, RecordedResource
from tests.infra.pulumi_harness import STACKS, graph_of, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

PINNED = {
    "aws-load-balancer-controller": ("3.5.0", "https://aws.github.io/eks-charts"),
    "cluster-autoscaler": ("9.59.0", "https://kubernetes.github.io/autoscaler"),
}


_CLUSTER_AUTOSCALER_GRAPHS: dict[str, Graph] = {}


@pytest.fixture(params=STACKS)
def graph(request) -> Graph:
    """Each stack with `nodeAutoscaler: cluster-autoscaler`: both controllers are deployed."""
    stack = request.param
    if stack not in _CLUSTER_AUTOSCALER_GRAPHS:
        _CLUSTER_AUTOSCALER_GRAPHS[stack] = run_program(
            stack, {"nodeAutoscaler": "cluster-autoscaler"}
        )
    return _CLUSTER_AUTOSCALER_GRAPHS[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_with_karpenter_there_is_no_cluster_autoscaler(stack):
    committed = graph_of(stack)  # nodeAutoscaler defaults to karpenter in every environment
    charts = {r.get("chart") for r in committed.of_type(RELEASE)}
    assert "cluster-autoscaler" not in charts
    assert "oci://public.ecr.aws/karpenter/karpenter" in charts
    assert not [r for r in committed.resources if "cluster-autoscaler" in r.name]


def release(graph: Graph, chart: str) -> RecordedResource:
    (found,) = [r for r in graph.of_type(RELEASE) if r.get("chart") == chart]
    return found


def trust(graph: Graph, role_name_part: str) -> dict:
    return json.loads(graph.one(ROLE, role_name_part).get("assumeRolePolicy"))


def test_exactly_the_two_controllers_are_helm_releases_with_pinned_versions(graph):
    # The monitoring charts (kube-state-metrics, Fluent Bit) are tested in test_observability.
    releases = {r.get("chart"): r for r in graph.of_type(RELEASE) if r.name.startswith("addons-")}
    assert set(releases) == set(PINNED)
    for chart, (version, repo) in PINNED.items():
        found = releases[chart]
        assert found.get("version") == version, chart
        assert found.get("repositoryOpts") == {"repo": repo}
        assert found.get("namespace") == "kube-system"
        assert found.get("name") == chart


@pytest.mark.parametrize(
    ("role", "service_account"),
    [("addons-lbc-irsa", "aws-load-balancer-controller"),
     ("addons-cluster-autoscaler-irsa", "cluster-autoscaler")],
)  # fmt: skip
def test_each_controller_role_trusts_only_its_own_service_account(graph, role, service_account):
    issuer = graph.outputs["oidcProviderArn"].split(":oidc-provider/", 1)[1]
    assert trust(graph, role) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": graph.outputs["oidcProviderArn"]},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:kube-system:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }
    values = release(graph, service_account).get("values")
    account = values["rbac"]["serviceAccount"] if "rbac" in values else values["serviceAccount"]
    assert account == {
        "create": True,
        "name": service_account,
        "annotations": {"eks.amazonaws.com/role-arn": graph.one(ROLE, role).outputs["arn"]},
    }


@pytest.mark.parametrize(
    ("prefix", "policy_file"),
    [("addons-lbc", "aws-load-balancer-controller.json"),
     ("addons-cluster-autoscaler", "cluster-autoscaler.json")],
)  # fmt: skip
def test_each_role_has_only_its_checked_in_policy(graph, prefix, policy_file):
    policy = graph.one(POLICY, f"{prefix}-policy")
    expected = (POLICIES / policy_file).read_text()
    expected = expected.replace("${CLUSTER_NAME}", graph.outputs["clusterName"])
    assert json.loads(policy.get("policy")) == json.loads(expected)
    role = graph.one(ROLE, f"{prefix}-irsa")
    attached = [a for a in graph.of_type(ATTACHMENT) if a.get("role") == role.outputs["name"]]
    assert [a.get("policyArn") for a in attached] == [policy.outputs["arn"]]
    assert not [p for p in graph.of_type("aws:iam/rolePolicy:RolePolicy")
                if p.get("role") in (role.id, role.outputs["name"])]  # fmt: skip


def test_the_autoscaler_may_only_resize_this_clusters_groups(graph):
    document = json.loads(graph.one(POLICY, "addons-cluster-autoscaler-policy").get("policy"))
    writes = [
        s for s in document["Statement"]
        if "autoscaling:SetDesiredCapacity" in s["Action"]
    ]  # fmt: skip
    (statement,) = writes
    assert statement["Condition"]["StringEquals"] == {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{graph.outputs['clusterName']}": "owned",
    }
    assert "${CLUSTER_NAME}" not in json.dumps(document)


def test_the_load_balancer_controller_knows_cluster_region_and_vpc_and_leaves_services_alone(
    graph,
):
    values = release(graph, "aws-load-balancer-controller").get("values")
    assert values["clusterName"] == graph.outputs["clusterName"]
    assert values["region"] == "us-east-1"
    assert values["vpcId"] == graph.outputs["vpcId"]
    assert values["enableServiceMutatorWebhook"] is False
    assert values["replicaCount"] == 2


def test_the_autoscaler_discovers_this_cluster_and_balances_zones(graph):
    values = release(graph, "cluster-autoscaler").get("values")
    assert values["cloudProvider"] == "aws"
    assert values["awsRegion"] == "us-east-1"
    assert values["autoDiscovery"] == {"clusterName": graph.outputs["clusterName"]}
    assert values["extraArgs"] == {
        "balance-similar-node-groups": True,
        "skip-nodes-with-system-pods": False,
        "skip-nodes-with-local-storage": False,
        "expander": "least-waste",
    }


def test_the_autoscaler_image_matches_the_cluster_minor(graph):
    values = release(graph, "cluster-autoscaler").get("values")
    assert values["image"]["tag"] == "v1.36.1"
    for minor in checks.KUBERNETES_VERSIONS:
        assert CLUSTER_AUTOSCALER_IMAGES[minor].startswith(f"v{minor}.")


def test_controllers_install_after_the_nodes_and_their_iam(graph):
    nodes = graph.one("eks:index:ManagedNodeGroup")
    for chart in PINNED:
        found = release(graph, chart)
        assert graph.depends_on(found, nodes), chart
        prefix = "addons-lbc" if chart.startswith("aws") else "addons-cluster-autoscaler"
        assert graph.depends_on(found, graph.one(ATTACHMENT, f"{prefix}-policy-attachment"))


def test_helm_releases_are_not_rendered_as_manifests_of_ours(tmp_path, dev):
    from infra.offline.render import write

    write(dev, tmp_path)
    kinds = {p.name.split("_")[1] for p in (tmp_path / "manifests").iterdir()}
    assert "release" not in kinds
