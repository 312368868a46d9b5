"""Karpenter: the controller, its IAM, the interruption queue and rules, node class and pools."""

from __future__ import annotations

import json

import pytest

from infra.offline.mocking import Graph
from infra.offline.networks import (
    EXAMPLE_DATABASE,
    EXAMPLE_PRIVATE,
    EXAMPLE_PUBLIC,
    EXAMPLE_VPC_ID,
)
from tests.infra.pulumi_harness import config_error, graph_of, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
NODES = "eks:index:ManagedNodeGroup"


def pools(graph: Graph) -> dict[str, dict]:
    return {r.get("metadata.name"): r.get("spec") for r in graph.of_type(NODE_POOL)}


def controller_statements(graph: Graph) -> dict[str, dict]:
    statements = {}
    for part in ("node-lifecycle", "iam-integration", "discovery"):
        document = json.loads(graph.one(POLICY, f"karpenter-controller-{part}").get("policy"))
        statements.update({s["Sid"]: s for s in document["Statement"]})
    return statements


def test_the_pinned_chart_runs_in_kube_system_with_the_cluster_and_its_queue(graph):
    release = graph.one(RELEASE, "karpenter-controller")
    assert release.get("chart") == "oci://public.ecr.aws/karpenter/karpenter"
    assert release.get("version") == "1.14.1"
    assert release.get("namespace") == "kube-system"
    values = release.get("values")
    queue = graph.one(QUEUE)
    assert values["settings"] == {
        "clusterName": graph.outputs["clusterName"],
        "interruptionQueue": queue.outputs["name"],
    }
    role = graph.one("aws:iam/role:Role", "karpenter-controller-irsa")
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }
    issuer = graph.outputs["oidcProviderArn"].split(":oidc-provider/", 1)[1]
    trust = json.loads(role.get("assumeRolePolicy"))["Statement"][0]["Condition"]
    assert trust == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:kube-system:karpenter",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }
    assert graph.depends_on(release, graph.one(NODES))


def test_the_queue_keeps_notices_300_s_encrypted_and_only_over_tls(graph):
    queue = graph.one(QUEUE)
    assert queue.get("name") == graph.outputs["clusterName"]
    assert queue.get("messageRetentionSeconds") == 300
    assert queue.get("sqsManagedSseEnabled") is True
    policy = json.loads(graph.one("aws:sqs/queuePolicy:QueuePolicy").get("policy"))
    allow, deny = policy["Statement"]
    assert allow["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == queue.outputs["arn"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_interruption_rule_of_the_release_sends_to_the_queue(graph):
    patterns = {r.name: json.loads(r.get("eventPattern")) for r in graph.of_type(RULE)
                if r.name.startswith("karpenter-")}  # fmt: skip
    assert patterns == {
        "karpenter-scheduled-change": {
            "source": ["aws.health"], "detail-type": ["AWS Health Event"]},
        "karpenter-spot-interruption": {
            "source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "karpenter-rebalance": {
            "source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        "karpenter-instance-state-change": {
            "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
        "karpenter-capacity-reservation-interruption": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
    }  # fmt: skip
    queue_arn = graph.one(QUEUE).outputs["arn"]
    targets = {t.get("rule"): t.get("arn") for t in graph.of_type(TARGET)
               if t.name.startswith("karpenter-")}  # fmt: skip
    rule_names = {graph.one(RULE, name).outputs["name"] for name in patterns}
    assert targets == dict.fromkeys(rule_names, queue_arn)


def test_nodes_join_through_an_ec2_linux_access_entry_of_their_own_role(graph):
    entry = graph.one("aws:eks/accessEntry:AccessEntry", "karpenter-node-access")
    role = graph.one("aws:iam/role:Role", "karpenter-node-role")
    assert entry.get("type") == "EC2_LINUX"
    assert entry.get("principalArn") == role.outputs["arn"]
    assert entry.get("clusterName") == graph.outputs["clusterName"]
    attached = {a.get("policyArn") for a in graph.of_type(ATTACHMENT)
                if a.get("role") == role.outputs["name"]}  # fmt: skip
    assert attached == {
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    }


def test_the_controller_writes_only_what_carries_this_clusters_tags(graph):
    name = graph.outputs["clusterName"]
    owned = f"kubernetes.io/cluster/{name}"
    s = controller_statements(graph)
    assert len(s) == 18  # upstream's: 6 + 4 + 1 + 1 + 1 + 5 in its six policies
    assert s["AllowScopedEC2InstanceActionsWithTags"]["Condition"] == {
        "StringEquals": {f"aws:RequestTag/{owned}": "owned",
                         "aws:RequestTag/eks:eks-cluster-name": name},
        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
    }  # fmt: skip
    assert s["AllowScopedDeletion"]["Action"] == [
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
    ]
    assert s["AllowScopedDeletion"]["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/{owned}": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    node_role = graph.one("aws:iam/role:Role", "karpenter-node-role").outputs["arn"]
    assert s["AllowPassingInstanceRole"]["Resource"] == node_role
    assert s["AllowInterruptionQueueActions"]["Resource"] == graph.one(QUEUE).outputs["arn"]
    assert s["AllowRegionalReadActions"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": "us-east-1"}
    }
    assert s["AllowAPIServerEndpointDiscovery"]["Resource"] == (
        f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"
    )
    # Nothing writes on "*": only reads, pricing and the instance profile list are unscoped.
    unscoped = sorted(sid for sid, st in s.items() if st["Resource"] == "*")
    assert unscoped == [
        "AllowPricingReadActions", "AllowRegionalReadActions",
        "AllowUnscopedInstanceProfileListAction", "AllowZonalShiftStatusReadOnly",
    ]  # fmt: skip
    for part in ("node-lifecycle", "iam-integration", "discovery"):
        text = graph.one(POLICY, f"karpenter-controller-{part}").get("policy")
        assert len("".join(text.split())) <= 6144  # IAM's managed policy size limit


def test_the_node_class_requires_imdsv2_hop_1_and_encrypted_gp3(graph):
    spec = graph.one(NODE_CLASS).get("spec")
    assert spec["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpPutResponseHopLimit": 1,
        "httpTokens": "required",
    }
    assert spec["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "rootVolume": True,
            "ebs": {"volumeSize": "50Gi", "volumeType": "gp3", "encrypted": True,
                    "deleteOnTermination": True},
        }
    ]  # fmt: skip
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260903"}]  # 1.36's node release
    assert spec["role"] == graph.one("aws:iam/role:Role", "karpenter-node-role").outputs["name"]


def test_the_node_class_selects_the_private_subnets_and_both_groups_by_id(graph):
    spec = graph.one(NODE_CLASS).get("spec")
    assert spec["subnetSelectorTerms"] == [{"id": s} for s in graph.outputs["privateSubnetIds"]]
    assert spec["securityGroupSelectorTerms"] == [
        {"id": graph.outputs["nodeSecurityGroupId"]},
        {"id": graph.outputs["workloadSecurityGroupId"]},
    ]


def test_in_an_existing_vpc_the_node_class_uses_its_subnets_by_id():
    graph = run_program("pr-7", {
        "vpcId": EXAMPLE_VPC_ID, "publicSubnetIds": EXAMPLE_PUBLIC,
        "privateSubnetIds": EXAMPLE_PRIVATE, "databaseSubnetIds": EXAMPLE_DATABASE,
    })  # fmt: skip
    spec = graph.one(NODE_CLASS).get("spec")
    assert spec["subnetSelectorTerms"] == [{"id": s} for s in EXAMPLE_PRIVATE]
    workload = graph.one("aws:ec2/securityGroup:SecurityGroup", "network-workload-sg")
    assert {"id": workload.id} in spec["securityGroupSelectorTerms"]


def test_api_pool_is_on_demand_and_workers_may_use_spot_behind_a_taint(prod):
    p = pools(prod)
    assert set(p) == {"api", "workers"}
    capacity = {
        n: [r["values"] for r in s["template"]["spec"]["requirements"]
            if r["key"] == "karpenter.sh/capacity-type"]
        for n, s in p.items()
    }  # fmt: skip
    assert capacity == {"api": [["on-demand"]], "workers": [["spot", "on-demand"]]}
    assert "taints" not in p["api"]["template"]["spec"]
    assert p["workers"]["template"]["spec"]["taints"] == [
        {"key": "agent-platform/workers", "value": "true", "effect": "NoSchedule"}
    ]
    for spec in p.values():
        assert spec["template"]["metadata"]["labels"] == {"agent-platform/pool": "general"}
        assert spec["disruption"] == {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "5m",
            "budgets": [{"nodes": "1"}],
        }
    assert p["workers"]["weight"] > p["api"]["weight"]


@pytest.mark.parametrize(
    ("stack", "limits"),
    [("dev", {"cpu": "16", "memory": "64Gi"}), ("prod", {"cpu": "128", "memory": "512Gi"})],
)
def test_pool_limits_come_from_config(stack, limits):
    assert {n: s["limits"] for n, s in pools(graph_of(stack)).items()} == {
        "api": limits, "workers": limits}  # fmt: skip
    other = run_program("dev", {"nodePoolCpuLimit": 40, "nodePoolMemoryLimitGib": 160})
    assert pools(other)["api"]["limits"] == {"cpu": "40", "memory": "160Gi"}


def test_worker_pods_tolerate_the_workers_pool_and_the_api_pods_do_not(prod):
    deployments = {d.get("metadata.name"): d.get("spec.template.spec")
                   for d in prod.of_type("kubernetes:apps/v1:Deployment")}  # fmt: skip
    worker, api = deployments["agent-worker"], deployments["agent-api"]
    assert worker["tolerations"] == [{"key": "agent-platform/workers", "operator": "Equal",
                                      "value": "true", "effect": "NoSchedule"}]  # fmt: skip
    assert "tolerations" not in api
    for spec in (worker, api):
        assert spec["nodeSelector"] == {"agent-platform/pool": "general"}
    annotations = prod.one("kubernetes:apps/v1:Deployment", "worker").get(
        "spec.template.metadata.annotations")  # fmt: skip
    assert "karpenter.sh/do-not-disrupt" not in annotations


def test_the_spot_service_linked_role_is_opt_in(prod):
    slr = "aws:iam/serviceLinkedRole:ServiceLinkedRole"
    assert prod.of_type(slr) == []
    graph = run_program("dev", {"createSpotServiceLinkedRole": True})
    assert graph.one(slr).get("awsServiceName") == "spot.amazonaws.com"


def test_switching_autoscalers_updates_the_node_group_in_place():
    """Only inputs EKS updates in place differ: the group is never replaced."""
    karpenter = run_program("prod").one(NODES)
    autoscaler = run_program("prod", {"nodeAutoscaler": "cluster-autoscaler"}).one(NODES)
    assert karpenter.urn == autoscaler.urn
    differing = {k for k in {*karpenter.inputs, *autoscaler.inputs}
                 if karpenter.inputs.get(k) != autoscaler.inputs.get(k)}  # fmt: skip
    assert differing == {"labels", "tags", "ignoreScalingChanges"}


def test_with_cluster_autoscaler_there_is_no_karpenter():
    graph = run_program("dev", {"nodeAutoscaler": "cluster-autoscaler"})
    assert not [r for r in graph.resources if "karpenter" in r.type or r.name.startswith("karp")]


def test_bad_autoscaler_and_limits_name_the_key_and_what_is_allowed():
    assert config_error("dev", {"nodeAutoscaler": "fargate"}) == (
        "agent-platform:nodeAutoscaler: 'fargate' is not valid; allowed: karpenter | "
        "cluster-autoscaler"
    )
    assert config_error("dev", {"nodePoolCpuLimit": 0}).startswith(
        "agent-platform:nodePoolCpuLimit: 0 is not valid; allowed: 1..10000"
    )
