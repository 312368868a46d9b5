"""Addons component: the cluster's controllers installed with Helm, each with its own IAM role.

- AWS Load Balancer Controller: registers the API pods' IPs in the ALB's target group through
  a TargetGroupBinding (the ALB itself is Pulumi's). Its Service mutator webhook is off, so it
  does not take over `type: LoadBalancer` Services.
- Cluster Autoscaler (only with `nodeAutoscaler: cluster-autoscaler`; Karpenter has its own
  component): adds nodes when pods are Pending and removes idle ones, finding the node group by
  its auto-discovery tags; its image minor matches the cluster's Kubernetes minor.

Chart versions are pinned. Each controller's IAM role trusts exactly its own service account
(IRSA) and carries a least-privilege policy kept as JSON in infra/components/policies/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.irsa import ROLE_ARN_ANNOTATION, irsa_role

POLICIES = Path(__file__).parent / "policies"
NAMESPACE = "kube-system"


@dataclass(frozen=True)
class Chart:
    """A pinned Helm chart and the service account its controller runs as."""

    chart: str
    version: str
    repo: str
    service_account: str
    policy_file: str


LOAD_BALANCER_CONTROLLER = Chart(
    chart="aws-load-balancer-controller",
    version="3.5.0",
    repo="https://aws.github.io/eks-charts",
    service_account="aws-load-balancer-controller",
    policy_file="aws-load-balancer-controller.json",
)
CLUSTER_AUTOSCALER = Chart(
    chart="cluster-autoscaler",
    version="9.59.0",
    repo="https://kubernetes.github.io/autoscaler",
    service_account="cluster-autoscaler",
    policy_file="cluster-autoscaler.json",
)
# The autoscaler's minor must match the cluster's (it is built against that scheduler);
# every allowed kubernetesVersion needs an entry.
CLUSTER_AUTOSCALER_IMAGES = {"1.35": "v1.35.0", "1.36": "v1.36.1"}


def policy_document(chart: Chart, cluster_name: str) -> str:
    """The chart's IAM policy (JSON), scoped to `cluster_name` where it says `${CLUSTER_NAME}`."""
    return (POLICIES / chart.policy_file).read_text().replace("${CLUSTER_NAME}", cluster_name)


@dataclass(frozen=True)
class AddonsArgs:
    """Inputs of the Addons component."""

    cluster_name: str
    kubernetes_version: str
    region: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    cluster_ready: Sequence[pulumi.Resource]  # the controllers' pods need nodes and DNS
    cluster_autoscaler: bool = True  # False when Karpenter scales the nodes


class Addons(pulumi.ComponentResource):
    """The load balancer controller and the cluster autoscaler, as Helm releases."""

    load_balancer_controller: k8s.helm.v3.Release
    cluster_autoscaler: k8s.helm.v3.Release | None

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Addons", name, None, opts)

        self.load_balancer_controller = self._release(
            f"{name}-lbc",
            LOAD_BALANCER_CONTROLLER,
            args,
            lambda role_arn: {
                "clusterName": args.cluster_name,
                # Both given, so the controller needs no instance metadata (hop limit 1).
                "region": args.region,
                "vpcId": args.vpc_id,
                "replicaCount": 2,
                "serviceAccount": _service_account(LOAD_BALANCER_CONTROLLER, role_arn),
                "enableServiceMutatorWebhook": False,
                "podDisruptionBudget": {"maxUnavailable": 1},
            },
        )
        self.cluster_autoscaler = None
        if args.cluster_autoscaler:
            self.cluster_autoscaler = self._cluster_autoscaler(name, args)
        self.register_outputs(
            {
                "loadBalancerControllerChart": LOAD_BALANCER_CONTROLLER.version,
                "clusterAutoscalerChart": CLUSTER_AUTOSCALER.version
                if args.cluster_autoscaler
                else None,
            }
        )

    def _cluster_autoscaler(self, name: str, args: AddonsArgs) -> k8s.helm.v3.Release:
        image_tag = CLUSTER_AUTOSCALER_IMAGES[args.kubernetes_version]
        return self._release(
            f"{name}-cluster-autoscaler",
            CLUSTER_AUTOSCALER,
            args,
            lambda role_arn: {
                "cloudProvider": "aws",
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster_name},
                "image": {"tag": image_tag},
                "rbac": {
                    "create": True,
                    "serviceAccount": _service_account(CLUSTER_AUTOSCALER, role_arn),
                },
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    # kube-system pods (CoreDNS, controllers) have PDBs; let nodes go.
                    "skip-nodes-with-system-pods": False,
                    # The service's pods use an emptyDir for /tmp only: scratch space.
                    "skip-nodes-with-local-storage": False,
                    "expander": "least-waste",
                },
            },
        )

    def _release(
        self, name: str, chart: Chart, args: AddonsArgs, values: Any
    ) -> k8s.helm.v3.Release:
        child = pulumi.ResourceOptions(parent=self)
        role = irsa_role(
            f"{name}-irsa",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=NAMESPACE,
            service_account=chart.service_account,
            description=f"{chart.chart} in {args.cluster_name} (IRSA)",
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-policy",
            description=f"Least privilege of {chart.chart} in {args.cluster_name}",
            policy=policy_document(chart, args.cluster_name),
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-policy-attachment", role=role.name, policy_arn=policy.arn, opts=child
        )
        return k8s.helm.v3.Release(
            name,
            name=chart.chart,
            chart=chart.chart,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=NAMESPACE,
            values=values(role.arn),
            cleanup_on_fail=True,
            max_history=5,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment, *args.cluster_ready]),
        )


def _service_account(chart: Chart, role_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "create": True,
        "name": chart.service_account,
        "annotations": {ROLE_ARN_ANNOTATION: role_arn},
    }
