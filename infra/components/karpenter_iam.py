"""Karpenter's IAM: the controller's least-privilege policy and the role its nodes run as.

Both are taken from Karpenter's getting-started CloudFormation template of the pinned release
(aws/karpenter-provider-aws, website/content/en/v1.14/getting-started/getting-started-with-
karpenter/cloudformation.yaml, at commit 1d927085dd81a9df9301e613f371dac5b4d16bfe, "docs: update
for patch release v1.14.1"): the node role's four managed policies, and the controller's six
policies (node lifecycle, IAM integration, EKS integration, interruption, zonal shift, resource
discovery) statement for statement, with their Sids. Every write action is scoped as upstream
scopes it: to resources tagged `kubernetes.io/cluster/<cluster>: owned` and
`karpenter.sh/nodepool` (or `karpenter.k8s.aws/ec2nodeclass` for instance profiles), to the one
node role for iam:PassRole, to the one interruption queue; reads are pinned to the region.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NODE_POLICIES = (
    "AmazonEKS_CNI_Policy",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
SPOT_SERVICE = "spot.amazonaws.com"


@dataclass(frozen=True)
class Scope:
    """What the controller's policy is scoped to."""

    partition: str
    region: str
    account_id: str
    cluster_name: str
    node_role_arn: str
    queue_arn: str


def _ec2(s: Scope, *resources: str) -> list[str]:
    return [f"arn:{s.partition}:ec2:{s.region}:{r}" for r in resources]


def _owned(s: Scope, prefix: str) -> dict[str, str]:
    return {f"aws:{prefix}/kubernetes.io/cluster/{s.cluster_name}": "owned"}


def _tagged_on_create(s: Scope) -> dict[str, str]:
    return {**_owned(s, "RequestTag"), "aws:RequestTag/eks:eks-cluster-name": s.cluster_name}


_CREATED = (
    "*:fleet/*", "*:instance/*", "*:volume/*", "*:network-interface/*", "*:launch-template/*",
    "*:spot-instances-request/*",
)  # fmt: skip
_NODEPOOL_TAG = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
_NODEPOOL_RESOURCE_TAG = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
_NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"


def node_lifecycle(s: Scope) -> list[dict[str, Any]]:
    """KarpenterControllerNodeLifecyclePolicy: launch, tag and terminate its own nodes."""
    return [
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Effect": "Allow",
            "Resource": [
                f"arn:{s.partition}:ec2:{s.region}::image/*",
                f"arn:{s.partition}:ec2:{s.region}::snapshot/*",
                *_ec2(
                    s,
                    "*:security-group/*",
                    "*:subnet/*",
                    "*:capacity-reservation/*",
                    "*:placement-group/*",
                ),
            ],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Effect": "Allow",
            "Resource": _ec2(s, "*:launch-template/*")[0],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Condition": {
                "StringEquals": _owned(s, "ResourceTag"),
                "StringLike": _NODEPOOL_RESOURCE_TAG,
            },
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Resource": _ec2(s, *_CREATED),
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Condition": {"StringEquals": _tagged_on_create(s), "StringLike": _NODEPOOL_TAG},
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Resource": _ec2(s, *_CREATED),
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {
                    **_tagged_on_create(s),
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": _NODEPOOL_TAG,
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Resource": _ec2(s, "*:instance/*")[0],
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": _owned(s, "ResourceTag"),
                "StringLike": _NODEPOOL_RESOURCE_TAG,
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": s.cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Resource": _ec2(s, "*:instance/*", "*:launch-template/*"),
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Condition": {
                "StringEquals": _owned(s, "ResourceTag"),
                "StringLike": _NODEPOOL_RESOURCE_TAG,
            },
        },
    ]


def iam_integration(s: Scope) -> list[dict[str, Any]]:
    """KarpenterControllerIAMIntegrationPolicy: pass the node role, manage instance profiles."""
    profiles = f"arn:{s.partition}:iam::{s.account_id}:instance-profile/*"
    region_tag = "topology.kubernetes.io/region"
    return [
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Resource": s.node_role_arn,
            "Action": "iam:PassRole",
            "Condition": {
                "StringEquals": {
                    "iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]
                }
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileCreationActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": ["iam:CreateInstanceProfile"],
            "Condition": {
                "StringEquals": {
                    **_tagged_on_create(s),
                    f"aws:RequestTag/{region_tag}": s.region,
                },
                "StringLike": {f"aws:RequestTag/{_NODECLASS_TAG}": "*"},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileTagActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": ["iam:TagInstanceProfile"],
            "Condition": {
                "StringEquals": {
                    **_owned(s, "ResourceTag"),
                    f"aws:ResourceTag/{region_tag}": s.region,
                    **_tagged_on_create(s),
                    f"aws:RequestTag/{region_tag}": s.region,
                },
                "StringLike": {
                    f"aws:ResourceTag/{_NODECLASS_TAG}": "*",
                    f"aws:RequestTag/{_NODECLASS_TAG}": "*",
                },
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            "Condition": {
                "StringEquals": {
                    **_owned(s, "ResourceTag"),
                    f"aws:ResourceTag/{region_tag}": s.region,
                },
                "StringLike": {f"aws:ResourceTag/{_NODECLASS_TAG}": "*"},
            },
        },
    ]


def _cluster_arn(s: Scope) -> str:
    return f"arn:{s.partition}:eks:{s.region}:{s.account_id}:cluster/{s.cluster_name}"


def integrations(s: Scope) -> list[dict[str, Any]]:
    """The EKS integration, interruption and zonal-shift policies (one statement each)."""
    return [
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Resource": _cluster_arn(s),
            "Action": "eks:DescribeCluster",
        },
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Resource": s.queue_arn,
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        },
        {
            "Sid": "AllowZonalShiftStatusReadOnly",
            "Effect": "Allow",
            "Resource": "*",
            "Action": ["arc-zonal-shift:GetManagedResource"],
            "Condition": {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": _cluster_arn(s)}},
        },
    ]


READ_ACTIONS = (
    "ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups",
    "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
)  # fmt: skip


def resource_discovery(s: Scope) -> list[dict[str, Any]]:
    """KarpenterControllerResourceDiscoveryPolicy: regional reads, AMI parameters, prices."""
    return [
        {
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": list(READ_ACTIONS),
            "Condition": {"StringEquals": {"aws:RequestedRegion": s.region}},
        },
        {
            "Sid": "AllowSSMReadActions",
            "Effect": "Allow",
            "Resource": f"arn:{s.partition}:ssm:{s.region}::parameter/aws/service/*",
            "Action": "ssm:GetParameter",
        },
        {
            "Sid": "AllowPricingReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": "pricing:GetProducts",
        },
        {
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Effect": "Allow",
            "Resource": "*",
            "Action": "iam:ListInstanceProfiles",
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Resource": f"arn:{s.partition}:iam::{s.account_id}:instance-profile/*",
            "Action": "iam:GetInstanceProfile",
        },
    ]


def controller_policies(s: Scope) -> dict[str, str]:
    """The controller's policies (JSON) by name: upstream's six, in three documents, since all
    of them in one would pass IAM's 6,144-character limit of a managed policy."""

    def document(statements: list[dict[str, Any]]) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    return {
        "node-lifecycle": document(node_lifecycle(s)),
        "iam-integration": document(iam_integration(s)),
        "discovery": document([*integrations(s), *resource_discovery(s)]),
    }


def node_trust_policy() -> str:
    """EC2 instances may assume the node role (upstream: Service ec2.${AWS::URLSuffix})."""
    return json.dumps(
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
    )
