"""Keda component: KEDA (the operator, its metrics server and admission webhooks) as a pinned
Helm release in its own namespace, and the AWS identity its Prometheus trigger needs.

The chart's version is the one whose CRDs are vendored in infra/components/crds/keda-2.20.2/
(`crds.install: true`: the release installs and upgrades them). The pods run on the system
nodes like the other controllers: no toleration or node selector.

The API's chats-in-flight trigger queries Amazon Managed Service for Prometheus with requests
signed by KEDA's own identity (TriggerAuthentication `podIdentity.provider: aws`, identity owner
`keda`): an IRSA role that only `keda/keda-operator` can assume, allowed to query the stack's
workspace and nothing else. The redis-streams triggers need no AWS identity (Redis AUTH).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.irsa import irsa_role

CHART = "keda"
VERSION = "2.20.2"  # = infra/components/crds/keda-2.20.2
REPO = "https://kedacore.github.io/charts"
NAMESPACE = "keda"
OPERATOR_SERVICE_ACCOUNT = "keda-operator"
# What the prometheus scaler calls on a workspace (Prometheus' query API through AMP).
QUERY_ACTIONS = ("aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata")


def query_policy(workspace_arn: str) -> str:
    """The operator's IAM policy (JSON): query one AMP workspace."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "QueryTheStacksWorkspace",
                    "Effect": "Allow",
                    "Action": list(QUERY_ACTIONS),
                    "Resource": workspace_arn,
                }
            ],
        }
    )


@dataclass(frozen=True)
class KedaArgs:
    """Inputs of the Keda component."""

    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    prometheus_workspace_arn: pulumi.Input[str]  # the workspace the API's trigger queries
    cluster_ready: Sequence[pulumi.Resource]  # nodes and DNS before the controllers' pods


class Keda(pulumi.ComponentResource):
    """The KEDA Helm release and the operator's IRSA role."""

    release: k8s.helm.v3.Release
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Keda", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = irsa_role(
            f"{name}-operator-irsa",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=NAMESPACE,
            service_account=OPERATOR_SERVICE_ACCOUNT,
            description="KEDA operator: queries the stack's Prometheus workspace (IRSA)",
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-operator-query",
            role=role.name,
            policy=pulumi.Output.from_input(args.prometheus_workspace_arn).apply(query_policy),
            opts=child,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=CHART,
            chart=CHART,
            version=VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPO),
            namespace=NAMESPACE,
            create_namespace=True,
            values={
                "crds": {"install": True},
                "podIdentity": {
                    "aws": {
                        "irsa": {
                            "enabled": True,
                            "roleArn": role.arn,
                            "stsRegionalEndpoints": "true",
                        }
                    }
                },
                "serviceAccount": {"operator": {"name": OPERATOR_SERVICE_ACCOUNT}},
            },
            cleanup_on_fail=True,
            max_history=5,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *args.cluster_ready]),
        )
        self.role_arn = role.arn
        self.register_outputs({"chart": VERSION, "operatorRoleArn": self.role_arn})
