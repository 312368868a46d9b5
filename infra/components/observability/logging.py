"""Logs: every container's output to CloudWatch Logs (Fluent Bit), the WAF's to S3.

Container logs: AWS for Fluent Bit (the eks-charts Helm chart, pinned) as a DaemonSet in
kube-system tails /var/log/containers and sends each line, with its pod's Kubernetes metadata,
to the stack's container log group, which the program creates first with the stack's retention
(and key); Fluent Bit never creates groups. Its IAM role (IRSA) may only write streams of that
group. Chosen over the amazon-cloudwatch-observability add-on (README "Operations" says why).

WAF: the web ACL logs every request to the `aws-waf-logs-` bucket with the Authorization header
(the clients' API keys) redacted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.irsa import ROLE_ARN_ANNOTATION, irsa_role
from infra.components.observability.prometheus import HelmChart

FLUENT_BIT = HelmChart(
    chart="aws-for-fluent-bit",
    version="0.2.0",  # AWS for Fluent Bit 3.2.1
    repo="https://aws.github.io/eks-charts",
)
FLUENT_BIT_NAMESPACE = "kube-system"
FLUENT_BIT_SERVICE_ACCOUNT = "aws-for-fluent-bit"
# One stream per container: <namespace>.<pod>.<container>.
LOG_STREAM_TEMPLATE = (
    "$kubernetes['namespace_name'].$kubernetes['pod_name'].$kubernetes['container_name']"
)
REDACTED_HEADERS = ("authorization",)  # WAF wants header names in lower case


def fluent_bit_policy(log_group_arn: str) -> str:
    """Write streams of one log group, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteContainerLogs",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    "Resource": [log_group_arn, f"{log_group_arn}:*"],  # and its streams
                }
            ],
        }
    )


def fluent_bit_values(
    region: str, log_group_name: pulumi.Input[str], role_arn: pulumi.Input[str]
) -> dict[str, Any]:
    """Chart values: CloudWatch Logs output only, into the existing group."""
    return {
        "cloudWatchLogs": {
            "enabled": True,
            "region": region,
            "logGroupName": log_group_name,
            "logStreamPrefix": "fluentbit-",  # streams the template cannot name
            "logStreamTemplate": LOG_STREAM_TEMPLATE,
            "autoCreateGroup": False,
        },
        "firehose": {"enabled": False},
        "kinesis": {"enabled": False},
        "elasticsearch": {"enabled": False},
        "serviceAccount": {
            "create": True,
            "name": FLUENT_BIT_SERVICE_ACCOUNT,
            "annotations": {ROLE_ARN_ANNOTATION: role_arn},
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "250Mi"},
        },
        # A log collector runs on every node, also on tainted ones (Karpenter's workers pool).
        "tolerations": [{"operator": "Exists"}],
    }


def container_logs(
    name: str,
    *,
    cluster_name: str,
    region: str,
    log_group: aws.cloudwatch.LogGroup,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    after: Sequence[pulumi.Resource],
) -> k8s.helm.v3.Release:
    """Fluent Bit with its role, sending every container's output to `log_group`."""
    role = irsa_role(
        f"{name}-fluent-bit-irsa",
        oidc_provider_arn=oidc_provider_arn,
        oidc_issuer=oidc_issuer,
        namespace=FLUENT_BIT_NAMESPACE,
        service_account=FLUENT_BIT_SERVICE_ACCOUNT,
        description=f"Fluent Bit in {cluster_name}: container logs to CloudWatch (IRSA)",
        opts=opts,
    )
    policy = aws.iam.RolePolicy(
        f"{name}-fluent-bit-policy",
        role=role.id,
        policy=log_group.arn.apply(fluent_bit_policy),
        opts=opts,
    )
    return k8s.helm.v3.Release(
        f"{name}-fluent-bit",
        name=FLUENT_BIT.chart,
        chart=FLUENT_BIT.chart,
        version=FLUENT_BIT.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=FLUENT_BIT.repo),
        namespace=FLUENT_BIT_NAMESPACE,
        values=fluent_bit_values(region, log_group.name, role.arn),
        cleanup_on_fail=True,
        max_history=5,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[policy, log_group, *after])
        ),
    )


def waf_logging(
    name: str,
    *,
    web_acl_arn: pulumi.Input[str],
    bucket_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.wafv2.WebAclLoggingConfiguration:
    """Every request the web ACL sees, to the bucket, without the Authorization header."""
    return aws.wafv2.WebAclLoggingConfiguration(
        f"{name}-waf-logging",
        resource_arn=web_acl_arn,
        log_destination_configs=[bucket_arn],
        redacted_fields=[{"single_header": {"name": header}} for header in REDACTED_HEADERS],
        opts=opts,
    )
