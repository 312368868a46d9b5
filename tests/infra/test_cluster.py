"""The EKS cluster: control plane, managed nodes, EKS add-ons, the Kubernetes provider."""

from __future__ import annotations

import pytest

from infra.config import KEYS_BY_NAME, checks
from infra.offline.mocking import Graph
from tests.infra.pulumi_harness import config_error, graph_of, run_program

CLUSTER = "eks:index:Cluster"
NODES = "eks:index:ManagedNodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ADDON = "aws:eks/addon:Addon"
ADMIN = "arn:aws:iam::123456789012:role/PlatformAdmin"
OPS = "arn:aws:iam::123456789012:role/team/Ops"


def default(key: str, stack: str):
    return KEYS_BY_NAME[key].default(stack)


def test_the_default_kubernetes_version_is_in_eks_standard_support():
    # 1.34 leaves standard support on 2026-12-02; 1.35 and 1.36 are supported into 2027.
    assert checks.DEFAULT_KUBERNETES_VERSION == "1.36"
    assert "1.34" not in checks.KUBERNETES_VERSIONS
    assert checks.DEFAULT_KUBERNETES_VERSION in checks.KUBERNETES_VERSIONS


def test_the_control_plane_runs_the_configured_version(graph):
    assert graph.one(CLUSTER).get("version") == default("kubernetesVersion", graph.stack)
    other = run_program("dev", {"kubernetesVersion": "1.35"})
    assert other.one(CLUSTER).get("version") == "1.35"


def test_the_cluster_and_its_nodes_live_in_the_private_subnets(graph):
    cluster = graph.one(CLUSTER)
    private = graph.outputs["privateSubnetIds"]
    assert cluster.get("privateSubnetIds") == private
    assert "publicSubnetIds" not in cluster.inputs and "subnetIds" not in cluster.inputs
    assert cluster.get("vpcId") == graph.outputs["vpcId"]
    assert cluster.get("nodeAssociatePublicIpAddress") is False
    assert graph.one(NODES).get("subnetIds") == private


@pytest.mark.parametrize(
    ("stack", "cidrs"),
    # dev's default; staging and prod have none: their stack files set a documented placeholder.
    [("dev", ["0.0.0.0/0"]), ("staging", ["203.0.113.0/24"]), ("prod", ["203.0.113.0/24"])],
)
def test_the_api_endpoint_is_private_and_public_only_from_configured_ranges(stack, cidrs):
    cluster = graph_of(stack).one(CLUSTER)
    assert cluster.get("endpointPrivateAccess") is True
    assert cluster.get("endpointPublicAccess") is True
    assert cluster.get("publicAccessCidrs") == cidrs
    narrowed = run_program("prod", {"clusterPublicAccessCidrs": ["198.51.100.7/32"]})
    assert narrowed.one(CLUSTER).get("publicAccessCidrs") == ["198.51.100.7/32"]


def test_a_private_only_api_endpoint_has_no_allow_list():
    cluster = run_program(
        "prod", {"clusterEndpointPublicAccess": False, "clusterPublicAccessCidrs": None}
    ).one(CLUSTER)
    assert (cluster.get("endpointPrivateAccess"), cluster.get("endpointPublicAccess")) == (
        True,
        False,
    )
    # pulumi-eks throws on an allow-list without a public endpoint.
    assert "publicAccessCidrs" not in cluster.inputs


def test_authentication_uses_access_entries_only(graph):
    cluster = graph.one(CLUSTER)
    assert cluster.get("authenticationMode") == "API"
    assert cluster.get("accessEntries") == {}  # no admin roles configured in the stack files
    assert "roleMappings" not in cluster.inputs and "userMappings" not in cluster.inputs


def test_each_admin_role_gets_cluster_admin_at_cluster_scope():
    graph = run_program("prod", {"adminRoleArns": [ADMIN, OPS]})
    entries = graph.one(CLUSTER).get("accessEntries")
    assert set(entries) == {"admin-platformadmin", "admin-ops"}
    for key, arn in (("admin-platformadmin", ADMIN), ("admin-ops", OPS)):
        assert entries[key]["principalArn"] == arn
        assert entries[key]["accessPolicies"] == {
            "cluster-admin": {
                "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                "accessScope": {"type": "cluster"},
            }
        }


def test_irsa_has_an_oidc_provider(graph):
    assert graph.one(CLUSTER).get("createOidcProvider") is True
    assert graph.outputs["oidcProviderArn"].startswith("arn:aws:iam::123456789012:oidc-provider/")


def test_kubernetes_secrets_are_envelope_encrypted_with_a_rotating_key(graph):
    key = graph.one("aws:kms/key:Key", "cluster-secrets-key")
    assert graph.one(CLUSTER).get("encryptionConfigKeyArn") == key.outputs["arn"]
    assert key.get("enableKeyRotation") is True
    alias = graph.one("aws:kms/alias:Alias", "cluster-secrets-key")
    assert alias.get("targetKeyId") == key.outputs["keyId"]
    assert alias.get("name") == f"alias/agent-platform-{graph.stack}-eks-secrets"


@pytest.mark.parametrize(("stack", "days"), [("dev", 7), ("prod", 30)])
def test_the_key_deletion_window_is_longest_where_deletion_is_protected(stack, days):
    key = graph_of(stack).one("aws:kms/key:Key", "cluster-secrets-key")
    assert key.get("deletionWindowInDays") == days


def test_control_plane_logs_api_audit_authenticator_expire(graph):
    cluster = graph.one(CLUSTER)
    assert cluster.get("enabledClusterLogTypes") == ["api", "audit", "authenticator"]
    logs = graph.one("aws:cloudwatch/logGroup:LogGroup", "control-plane")
    assert logs.get("name") == f"/aws/eks/{cluster.get('name')}/cluster"
    assert logs.get("retentionInDays") == 90
    assert graph.depends_on(cluster, logs), "EKS would create a never-expiring group first"


def test_no_default_node_group_and_no_pulumi_eks_security_groups(graph):
    cluster = graph.one(CLUSTER)
    assert cluster.get("skipDefaultNodeGroup") is True
    assert cluster.get("skipDefaultSecurityGroups") is True


def test_the_vpc_cni_enforces_network_policies(graph):
    options = graph.one(CLUSTER).get("vpcCniOptions")
    assert options["enableNetworkPolicy"] is True
    assert graph.one(CLUSTER).get("useDefaultVpcCni", False) is False  # the managed add-on


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cluster_deletion_protection_follows_the_environment(stack):
    expected = default("deletionProtection", stack)
    assert graph_of(stack).one(CLUSTER).get("deletionProtection") is expected


# --- nodes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "types", "sizes"),
    [("dev", ["t3.medium"], (1, 2, 3)), ("prod", ["t3.large"], (1, 3, 10))],
)
def test_node_group_size_and_types_follow_the_environment(stack, types, sizes):
    nodes = graph_of(stack).one(NODES)
    assert nodes.get("instanceTypes") == types
    assert nodes.get("capacityType") == "ON_DEMAND"
    scaling = nodes.get("scalingConfig")
    assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == sizes


def test_node_group_settings_come_from_config():
    graph = run_program("dev", {"nodeInstanceTypes": ["m6i.large", "m5.large"],
                                "nodeCapacityType": "SPOT", "nodeMaxSize": 7})  # fmt: skip
    nodes = graph.one(NODES)
    assert nodes.get("instanceTypes") == ["m6i.large", "m5.large"]
    assert nodes.get("capacityType") == "SPOT"
    assert nodes.get("scalingConfig")["maxSize"] == 7


def test_nodes_run_amazon_linux_2023_and_pulumi_holds_the_system_groups_size(graph):
    nodes = graph.one(NODES)
    assert nodes.get("amiType") == "AL2023_x86_64_STANDARD"
    assert nodes.get("operatingSystem") == "AL2023"
    # Karpenter (the default) never resizes the group: Pulumi keeps it at the desired size.
    assert nodes.get("ignoreScalingChanges") is False


def test_with_cluster_autoscaler_the_autoscaler_owns_the_desired_size():
    graph = run_program("prod", {"nodeAutoscaler": "cluster-autoscaler"})
    assert graph.one(NODES).get("ignoreScalingChanges") is True


def test_arm_instance_types_are_rejected_because_the_image_is_amd64():
    message = config_error("dev", {"nodeInstanceTypes": ["t3.large", "c7g.large"]})
    assert message.startswith("agent-platform:nodeInstanceTypes: 'c7g.large' is not valid")


def test_node_launch_template_requires_imdsv2_and_blocks_pods_from_the_node_role(graph):
    template = graph.one(TEMPLATE)
    assert graph.one(NODES).get("launchTemplate") == {
        "id": template.id,
        "version": str(template.outputs["latestVersion"]),
    }
    assert "enableIMDSv2" not in graph.one(NODES).inputs  # exclusive with a launch template
    assert template.get("metadataOptions") == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }


def test_node_root_volumes_are_encrypted_gp3(graph):
    (device,) = graph.one(TEMPLATE).get("blockDeviceMappings")
    assert device["deviceName"] == "/dev/xvda"
    assert device["ebs"] == {
        "volumeSize": 50,
        "volumeType": "gp3",
        "encrypted": True,
        "deleteOnTermination": True,
    }


def test_nodes_carry_the_eks_cluster_group_and_the_workload_group(graph):
    groups = graph.one(TEMPLATE).get("vpcSecurityGroupIds")
    eks_group = graph.outputs["nodeSecurityGroupId"]
    workload = graph.outputs["workloadSecurityGroupId"]
    assert groups == [eks_group, workload]
    assert eks_group != workload  # distinct ids: the assertions below can tell them apart


def test_with_karpenter_the_group_is_the_system_group_without_autoscaler_tags(graph):
    nodes = graph.one(NODES)
    assert nodes.get("labels") == {"agent-platform/pool": "system"}
    assert nodes.get("tags") == {}


def test_with_cluster_autoscaler_nodes_are_labelled_general_and_tagged_for_discovery():
    graph = run_program("prod", {"nodeAutoscaler": "cluster-autoscaler"})
    nodes = graph.one(NODES)
    name = graph.outputs["clusterName"]
    assert nodes.get("labels") == {"agent-platform/pool": "general"}
    assert nodes.get("tags") == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/{name}": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/agent-platform/pool": "general",
    }


def test_the_node_role_has_exactly_the_worker_policies(graph):
    role = graph.one("aws:iam/role:Role", "cluster-node-role")
    assert '"Service": "ec2.amazonaws.com"' in role.get("assumeRolePolicy")
    attached = {
        a.get("policyArn")
        for a in graph.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.get("role") == role.outputs["name"]
    }
    assert attached == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    }
    assert graph.one(NODES).get("nodeRole") == role.id


# --- add-ons and provider -------------------------------------------------------------------


def test_coredns_and_metrics_server_are_eks_add_ons_created_after_the_nodes(graph):
    addons = {a.get("addonName"): a for a in graph.of_type(ADDON)}
    assert set(addons) == {"coredns", "metrics-server"}
    nodes = graph.one(NODES)
    for addon in addons.values():
        assert addon.get("clusterName") == graph.outputs["clusterName"]
        assert addon.get("resolveConflictsOnCreate") == "OVERWRITE"
        assert graph.depends_on(addon, nodes)


def test_every_kubernetes_resource_uses_the_clusters_provider(graph: Graph):
    provider = graph.one("pulumi:providers:kubernetes")
    assert provider.get("kubeconfig")  # the cluster's kubeconfig (aws eks get-token)
    reference = f"{provider.urn}::{provider.id}"
    objects = [r for r in graph.resources if r.type.startswith("kubernetes:")]
    assert len(objects) >= 20
    assert {r.provider for r in objects} == {reference}


def test_the_kubeconfig_output_is_secret(graph):
    assert "kubeconfig" in graph.secret_outputs
    assert graph.outputs["kubeconfig"]["kind"] == "Config"
