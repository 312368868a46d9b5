"""Karpenter component: the node autoscaler, its AWS side and the nodes it may launch.

- Controller: the pinned chart (oci://public.ecr.aws/karpenter/karpenter, 1.14.1; its
  compatibility matrix covers Kubernetes 1.26-1.36) in kube-system, two replicas on the system
  node group (the chart keeps them off Karpenter's own nodes and tolerates CriticalAddonsOnly),
  with `settings.clusterName` and `settings.interruptionQueue`. Its IAM role is trusted by its
  service account only (IRSA) and carries upstream's policy (infra/components/karpenter_iam.py).
- Nodes: an IAM role with upstream's four managed policies and an EKS access entry of type
  EC2_LINUX (the API authentication mode lets the nodes join without aws-auth); Karpenter creates
  the instance profile itself from the EC2NodeClass's `role`.
- Interruptions: an SQS queue (SSE, 300 s retention, TLS only) fed by every EventBridge rule the
  release's getting-started template defines (Health events, Spot interruption warnings,
  rebalance recommendations, instance state changes, capacity reservation interruptions), so
  Karpenter drains a node before EC2 takes it away.
- Optionally the account's EC2 Spot service-linked role (one per account: creating it again
  fails, so it is opt-in).
- Custom resources: one EC2NodeClass and two NodePools (see `node_pools`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components import karpenter_iam as iam
from infra.components.irsa import ROLE_ARN_ANNOTATION, irsa_role
from infra.components.karpenter_pools import (
    NODE_CLASS,
    PoolLimits,
    node_class_spec,
    node_pools,
)

CHART = "oci://public.ecr.aws/karpenter/karpenter"
CHART_VERSION = "1.14.1"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
QUEUE_RETENTION_SECONDS = 300  # upstream: a notice older than this is past acting on
# Upstream's rules (cloudformation.yaml: ScheduledChangeRule, SpotInterruptionRule,
# RebalanceRule, InstanceStateChangeRule, CapacityReservationInterruptionRule).
EVENT_RULES: dict[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    },
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    },
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}
# Upstream's getting-started sizes the controller at 1 CPU / 1 Gi; half a CPU is plenty for a
# cluster of tens of nodes and fits beside CoreDNS on a small system node.
CONTROLLER_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


@dataclass(frozen=True)
class KarpenterArgs:
    """Inputs of the Karpenter component."""

    cluster_name: str
    queue_name: str  # the interruption queue (upstream names it after the cluster)
    region: str
    account_id: str
    partition: str
    ami_alias: str  # al2023@v<YYYYMMDD>, the node release pinned for the cluster's version
    subnet_ids: Sequence[pulumi.Input[str]]  # the private subnets (by ID: shared VPCs too)
    security_group_ids: Sequence[pulumi.Input[str]]  # the cluster's group and the workload's
    limits: PoolLimits
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    cluster_ready: Sequence[pulumi.Resource]  # the control plane and the system nodes
    node_tags: Mapping[str, str]  # tags of what Karpenter launches (default tags do not reach it)
    spot_service_linked_role: bool = False


class Karpenter(pulumi.ComponentResource):
    """Karpenter's controller, IAM, interruption queue and rules, node class and pools."""

    release: k8s.helm.v3.Release
    queue: aws.sqs.Queue
    node_role: aws.iam.Role
    ready: list[pulumi.Resource]  # the controller and the NodePools it launches nodes for

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            description=f"Nodes Karpenter launches in {args.cluster_name}",
            assume_role_policy=iam.node_trust_policy(),
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=self.node_role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in iam.NODE_POLICIES
        ]
        access_entry = aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=args.cluster_name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster_ready)),
        )
        spot_role = (
            [
                aws.iam.ServiceLinkedRole(
                    f"{name}-spot-service-linked-role",
                    aws_service_name=iam.SPOT_SERVICE,
                    description="EC2 Spot (Karpenter's spot nodes)",
                    opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
                )
            ]
            if args.spot_service_linked_role
            else []
        )

        self.queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=args.queue_name,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions-policy",
            queue_url=self.queue.url,
            policy=self.queue.arn.apply(queue_policy),
            opts=child,
        )
        for rule_name, pattern in EVENT_RULES.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                description=f"Karpenter interruption handling ({args.cluster_name})",
                event_pattern=json.dumps(pattern),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}-target",
                rule=rule.name,
                target_id="KarpenterInterruptionQueueTarget",
                arn=self.queue.arn,
                opts=child,
            )

        role = irsa_role(
            f"{name}-controller-irsa",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            description=f"Karpenter controller in {args.cluster_name} (IRSA)",
            opts=child,
        )
        scope = pulumi.Output.all(self.node_role.arn, self.queue.arn).apply(
            lambda v: iam.controller_policies(
                iam.Scope(
                    partition=args.partition,
                    region=args.region,
                    account_id=args.account_id,
                    cluster_name=args.cluster_name,
                    node_role_arn=v[0],
                    queue_arn=v[1],
                )
            )
        )
        attachments = []
        for part in ("node-lifecycle", "iam-integration", "discovery"):
            policy = aws.iam.Policy(
                f"{name}-controller-{part}",
                description=f"Least privilege of Karpenter in {args.cluster_name} ({part})",
                policy=scope.apply(lambda docs, part=part: docs[part]),
                opts=child,
            )
            attachments.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-controller-{part}-attachment",
                    role=role.name,
                    policy_arn=policy.arn,
                    opts=child,
                )
            )
        self.release = k8s.helm.v3.Release(
            f"{name}-controller",
            name="karpenter",
            chart=CHART,
            version=CHART_VERSION,
            namespace=NAMESPACE,
            values={
                "settings": {
                    "clusterName": args.cluster_name,
                    "interruptionQueue": self.queue.name,
                },
                "serviceAccount": {
                    "create": True,
                    "name": SERVICE_ACCOUNT,
                    "annotations": {ROLE_ARN_ANNOTATION: role.arn},
                },
                "replicas": 2,
                "podDisruptionBudget": {"name": "karpenter", "maxUnavailable": 1},
                "controller": {"resources": CONTROLLER_RESOURCES},
            },
            cleanup_on_fail=True,
            max_history=5,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*attachments, access_entry, *args.cluster_ready]
            ),
        )

        after_crds = pulumi.ResourceOptions(
            parent=self, depends_on=[self.release, *node_policies, *spot_role]
        )
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata={"name": NODE_CLASS},
            spec=node_class_spec(
                role=self.node_role.name,
                ami_alias=args.ami_alias,
                subnet_ids=args.subnet_ids,
                security_group_ids=args.security_group_ids,
                tags=args.node_tags,
            ),
            opts=after_crds,
        )
        self.ready = [self.release]
        for pool_name, spec in node_pools(args.limits).items():
            pool = k8s.apiextensions.CustomResource(
                f"{name}-pool-{pool_name}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": pool_name},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node_class]),
            )
            self.ready.append(pool)

        self.register_outputs(
            {"chart": CHART_VERSION, "queueName": self.queue.name, "nodeRole": self.node_role.name}
        )


def queue_policy(queue_arn: str) -> str:
    """Upstream's queue policy: EventBridge (and SQS) may send; anything without TLS is denied."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "EC2InterruptionPolicy",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "DenyHTTP",
                    "Effect": "Deny",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    "Principal": "*",
                },
            ],
        }
    )
