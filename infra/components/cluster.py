"""Cluster component: EKS control plane, managed nodes, EKS add-ons and the Kubernetes provider.

- Control plane (pulumi-eks): private endpoint on, public endpoint (optional) only from the
  configured CIDRs,
  API authentication mode with one cluster-admin access entry per configured role (pulumi-eks
  also grants the identity running `pulumi up` cluster-admin at creation, which the Kubernetes
  provider below relies on), an OIDC provider for IRSA, Kubernetes secrets envelope-encrypted
  with a rotating KMS key, control-plane logs (api, audit, authenticator) kept for a set time.
- Nodes: one managed node group of Amazon Linux 2023 in the private subnets. Its launch template
  requires IMDSv2 with a hop limit of 1 (pods cannot borrow the node role; they use IRSA),
  encrypts the root volume and attaches two security groups: the one EKS creates for the
  cluster (control plane <-> nodes) and the workload group the database, cache and ALB trust.
  Pods on the VPC CNI share their node's security groups. With Cluster Autoscaler
  (`nodeAutoscaler: cluster-autoscaler`) the group runs everything and the autoscaler owns its
  desired size after creation. With Karpenter it is the system group: labelled
  `agent-platform/pool: system` (the service's pods select `general`, which only Karpenter's
  NodePools offer), held at its desired size by Pulumi, running Karpenter itself, CoreDNS and
  the other controllers. Switching only updates labels, tags and sizes in place.
  The node group runs the cluster's Kubernetes version at the AL2023 release pinned for it,
  so changing `kubernetesVersion` rolls the nodes too (pulumi-eks passes no version when a
  launch template is given, and EKS would leave the nodes on their first version and AMI).
- EKS add-ons: vpc-cni with network policy enforcement and kube-proxy (pulumi-eks), CoreDNS and
  metrics-server (created after the nodes they run on). All four at the versions pinned for the
  cluster's Kubernetes version (infra/config/kubernetes.py); unpinned, pulumi-eks would take the
  most recent build on every run.
- Support policy: `upgradePolicy` (STANDARD or EXTENDED) is the cluster's EKS support type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from infra.components.workload.pods import NODE_POOL, NODE_POOL_LABEL
from infra.config import ClusterConfig
from infra.tags import name_tag

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
AMI_TYPE = "AL2023_x86_64_STANDARD"
ROOT_DEVICE = "/dev/xvda"  # AL2023 EKS AMIs
ROOT_VOLUME_GIB = 50
IMDS_HOP_LIMIT = 1  # host-network pods still reach IMDS; pods on the pod network do not
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
# Add-ons created here; vpc-cni and kube-proxy come with the pulumi-eks cluster (its options pin
# their versions). With skip_default_node_group and no coredns options pulumi-eks creates no
# CoreDNS add-on, so it is created here, after the nodes.
MANAGED_ADDONS = ("coredns", "metrics-server")
SYSTEM_POOL = "system"  # the node group's pool label when Karpenter launches the service's nodes


def autoscaler_tags(cluster_name: str) -> dict[str, str]:
    """Tags cluster-autoscaler's auto-discovery looks for (EKS copies them to the ASG)."""
    return {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/{cluster_name}": "owned",
    }


@dataclass(frozen=True)
class ClusterArgs:
    """Inputs of the Cluster component."""

    settings: ClusterConfig  # the stack's cluster keys
    name: str  # the EKS cluster's name (explicit: IAM conditions and tags refer to it)
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    workload_security_group_id: pulumi.Input[str]
    deletion_protection: bool
    partition: str
    log_kms_key_arn: pulumi.Input[str] | None = None  # encrypts the control-plane log group
    node_labels: Mapping[str, str] = field(default_factory=lambda: {NODE_POOL_LABEL: NODE_POOL})


class Cluster(pulumi.ComponentResource):
    """An EKS cluster ready for workloads, and the Kubernetes provider that reaches it."""

    name: str
    kubeconfig: pulumi.Output
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    provider: k8s.Provider
    ready: list[pulumi.Resource]  # what pods need first: nodes and cluster DNS

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The explicit AWS provider given to this component; pulumi-eks gets it by name too.
        aws_provider = self.get_provider("aws::Provider")
        if aws_provider is None:
            raise ValueError("Cluster needs an explicit aws provider (default providers are off)")
        eks_opts = pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider})

        secrets_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Envelope encryption of Kubernetes secrets in {args.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30 if args.deletion_protection else 7,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets-key-alias",
            name=f"alias/{args.name}-eks-secrets",
            target_key_id=secrets_key.key_id,
            opts=child,
        )
        # EKS writes control-plane logs here; created first so they expire instead of
        # piling up in a never-expiring group EKS would create.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.name}/cluster",
            retention_in_days=args.settings.log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child,
        )

        release = args.settings.release
        addon_versions = release.addon_versions()
        cluster = eks.Cluster(
            f"{name}-eks",
            name=args.name,
            version=args.settings.kubernetes_version,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(
                support_type=args.settings.upgrade_policy
            ),
            vpc_id=args.vpc_id,
            private_subnet_ids=list(args.private_subnet_ids),
            node_associate_public_ip_address=False,
            skip_default_node_group=True,
            # Managed nodes get EKS's own cluster security group; pulumi-eks's extra groups
            # only serve self-managed nodes.
            skip_default_security_groups=True,
            endpoint_private_access=True,
            endpoint_public_access=args.settings.endpoint_public_access,
            # pulumi-eks refuses an allow-list without a public endpoint.
            public_access_cidrs=list(args.settings.public_endpoint_cidrs) or None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                _entry_key(arn): eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=f"arn:{args.partition}:eks::aws:cluster-access-policy/"
                            f"{CLUSTER_ADMIN_POLICY}",
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                                type="cluster"
                            ),
                        )
                    },
                )
                for arn in args.settings.admin_role_arns
            },
            create_oidc_provider=True,
            encryption_config_key_arn=secrets_key.arn,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            vpc_cni_options=eks.VpcCniOptionsArgs(
                enable_network_policy=True, addon_version=addon_versions["vpc-cni"]
            ),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(
                version=addon_versions["kube-proxy"]
            ),
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions.merge(
                eks_opts, pulumi.ResourceOptions(depends_on=[log_group])
            ),
        )

        node_role = aws.iam.Role(
            f"{name}-node-role",
            description=f"EC2 instances of the {args.name} managed node group",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=node_role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            description=f"Nodes of {args.name}: IMDSv2 only, encrypted root volume",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
                instance_metadata_tags="disabled",
            ),
            vpc_security_group_ids=[
                cluster.node_security_group_id,
                args.workload_security_group_id,
            ],
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=ROOT_VOLUME_GIB,
                        volume_type="gp3",
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags=name_tag(args.name, "node")
                )
                for kind in ("instance", "volume")
            ],
            opts=child,
        )
        # Karpenter: the system group (no Cluster Autoscaler, so Pulumi holds its size).
        karpenter = args.settings.karpenter
        labels = {NODE_POOL_LABEL: SYSTEM_POOL} if karpenter else dict(args.node_labels)
        node_group = eks.ManagedNodeGroup(
            f"{name}-general",
            cluster=cluster,
            node_role=node_role,
            subnet_ids=list(args.private_subnet_ids),
            ami_type=AMI_TYPE,
            operating_system=eks.OperatingSystem.AL2023,
            # Explicit: with a launch template pulumi-eks sends no version, and EKS then never
            # moves the nodes off the version and AMI they were created with.
            version=args.settings.kubernetes_version,
            release_version=release.node_release,
            instance_types=list(args.settings.node_instance_types),
            capacity_type=args.settings.node_capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.settings.node_min_size,
                desired_size=args.settings.node_desired_size,
                max_size=args.settings.node_max_size,
            ),
            # The cluster autoscaler owns the desired size once the group exists.
            ignore_scaling_changes=not karpenter,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            labels=labels,
            tags={}
            if karpenter
            else {
                **autoscaler_tags(args.name),
                # Lets the autoscaler scale a group up from zero for pods selecting the label.
                **{
                    f"k8s.io/cluster-autoscaler/node-template/label/{key}": value
                    for key, value in labels.items()
                },
            },
            opts=pulumi.ResourceOptions.merge(
                eks_opts, pulumi.ResourceOptions(depends_on=attachments)
            ),
        )

        addons = [
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=args.name,
                addon_name=addon,
                addon_version=addon_versions[addon],
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                # Their pods need nodes to become ACTIVE.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group]),
            )
            for addon in MANAGED_ADDONS
        ]

        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=cluster.kubeconfig_json,
            # Keep field ownership with the HPA for `replicas` and with controllers elsewhere.
            enable_server_side_apply=True,
            opts=child,
        )

        self.name = args.name
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig)
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.oidc_issuer = cluster.oidc_issuer
        self.node_security_group_id = cluster.node_security_group_id
        self.ready = [node_group, *addons]
        self.register_outputs(
            {
                "name": self.name,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
                "nodeSecurityGroupId": self.node_security_group_id,
            }
        )


def _entry_key(role_arn: str) -> str:
    """A stable access-entry key per role (its name), so removing one does not shift others."""
    return "admin-" + role_arn.rsplit("/", 1)[-1].lower()
