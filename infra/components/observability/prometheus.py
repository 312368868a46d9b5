"""Metrics on Amazon Managed Service for Prometheus (AMP): workspace, managed scraper, rules,
alert manager, and kube-state-metrics in the cluster.

The scraper is AWS's agentless collector: it runs outside the cluster with an ENI in each of the
private subnets (at least two AZs, as it requires) and a security group of its own that reaches
only the pods' metrics ports and the Kubernetes API; the pods' NetworkPolicy admits the metrics
port from the VPC. The cluster uses EKS access entries (authentication mode API), so AMP creates
the scraper's access entry and its read-only access policy itself; an in-cluster ClusterRole is
only needed for clusters that still map IAM roles through the aws-auth ConfigMap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from infra import contract
from infra.components.observability.scrape import KSM_APP, scrape_config_yaml
from infra.naming import NAME_RULES, physical_name
from infra.tags import name_tag

OBSERVABILITY_DIR = Path(__file__).resolve().parents[3] / "observability"
RULE_FILES = {"recording": "rules/recording.yml", "alerts": "rules/alerts.yml"}
ALERT_MANAGER_FILE = "alertmanager.yml"
RULE_NAMESPACE = "aws:amp/ruleGroupNamespace:RuleGroupNamespace"
KSM_NAMESPACE = "kube-system"
KSM_PORT = 8080
KUBERNETES_API_PORT = 443
# AMP records its scraper on the workspace with this tag; declaring it keeps Pulumi from
# removing it on the next update (pulumi-aws's advice).
SCRAPER_TAG = {"AMPAgentlessScraper": ""}


@dataclass(frozen=True)
class HelmChart:
    """A pinned Helm chart."""

    chart: str
    version: str
    repo: str


# kube-state-metrics 2.20 (client-go 1.36): the cluster's versions 1.35 and 1.36.
KUBE_STATE_METRICS = HelmChart(
    chart="kube-state-metrics",
    version="8.4.0",
    repo="https://prometheus-community.github.io/helm-charts",
)
# Only the objects the rules and dashboards read (every series is a billed sample).
KSM_COLLECTORS = ("pods", "deployments", "horizontalpodautoscalers", "nodes", "jobs")


def rule_file(kind: str) -> str:
    """The text of a rules file (`recording` or `alerts`) as loaded into the workspace."""
    return (OBSERVABILITY_DIR / RULE_FILES[kind]).read_text()


class _Literal(str):
    """A string YAML writes as a literal block."""


class _Dumper(yaml.SafeDumper):
    """Writes `_Literal` strings as blocks, so the definition reads like its source file."""


_Dumper.add_representer(
    _Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|")
)


def alert_manager_definition(topic_arn: str, region: str) -> str:
    """The alert manager definition of observability/alertmanager.yml, routed to `topic_arn`."""
    document = yaml.safe_load((OBSERVABILITY_DIR / ALERT_MANAGER_FILE).read_text())
    config = (
        document["alertmanager_config"]
        .replace("${SNS_TOPIC_ARN}", topic_arn)
        .replace("${AWS_REGION}", region)
    )
    definition = {
        "template_files": {k: _Literal(v) for k, v in document["template_files"].items()},
        "alertmanager_config": _Literal(config),
    }
    return yaml.dump(definition, Dumper=_Dumper, sort_keys=False, width=200)


@dataclass(frozen=True)
class ScraperNetwork:
    """Where the scraper's ENIs go and what they must reach."""

    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]  # the cluster's private subnets
    workload_security_group_id: pulumi.Input[str]  # on every node, so every pod
    cluster_security_group_id: pulumi.Input[str]  # the Kubernetes API's private endpoint


def scraper_security_group(
    name: str, prefix: str, net: ScraperNetwork, opts: pulumi.ResourceOptions
) -> tuple[aws.ec2.SecurityGroup, list[pulumi.Resource]]:
    """The scraper's group (egress to the metrics ports and the API only) and the matching
    ingress rules on the pods' and the API's groups."""
    group = aws.ec2.SecurityGroup(
        f"{name}-scraper-sg",
        vpc_id=net.vpc_id,
        description="Prometheus managed scraper: pod metrics ports and the Kubernetes API",
        tags=name_tag(prefix, "prometheus-scraper"),
        opts=opts,
    )
    paths = [
        ("metrics", net.workload_security_group_id, contract.METRICS_PORT, "service metrics"),
        ("ksm", net.workload_security_group_id, KSM_PORT, "kube-state-metrics"),
        ("api", net.cluster_security_group_id, KUBERNETES_API_PORT, "Kubernetes API"),
    ]
    rules: list[pulumi.Resource] = []
    for what, target, port, description in paths:
        rules.append(
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-scraper-to-{what}",
                security_group_id=group.id,
                referenced_security_group_id=target,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"Scrape {description}",
                opts=opts,
            )
        )
        rules.append(
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{what}-from-scraper",
                security_group_id=target,
                referenced_security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{description} from the Prometheus managed scraper",
                opts=opts,
            )
        )
    return group, rules


def workspace(
    name: str, prefix: str, existing_arn: str, opts: pulumi.ResourceOptions
) -> tuple[pulumi.Output[str], pulumi.Output[str], bool]:
    """(ARN, id, owned) of the stack's workspace: the configured one, or a new one."""
    if existing_arn:
        return (
            pulumi.Output.from_input(existing_arn),
            pulumi.Output.from_input(existing_arn.rsplit("/", 1)[-1]),
            False,
        )
    created = aws.amp.Workspace(f"{name}-workspace", alias=prefix, tags=SCRAPER_TAG, opts=opts)
    return created.arn, created.id, True


def scraper(
    name: str,
    *,
    prefix: str,
    cluster_arn: str,
    cluster_name: str,
    namespace: str,
    workspace_arn: pulumi.Input[str],
    net: ScraperNetwork,
    opts: pulumi.ResourceOptions,
    after: Sequence[pulumi.Resource],
) -> aws.amp.Scraper:
    """The managed scraper of the cluster, writing into the workspace."""
    group, rules = scraper_security_group(name, prefix, net, opts)
    return aws.amp.Scraper(
        f"{name}-scraper",
        alias=prefix,
        source={
            "eks": {
                "cluster_arn": cluster_arn,
                "subnet_ids": list(net.subnet_ids),
                "security_group_ids": [group.id],
            }
        },
        destination={"amp": {"workspace_arn": workspace_arn}},
        scrape_configuration=scrape_config_yaml(cluster_name, namespace, KSM_NAMESPACE),
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[*rules, *after])
        ),
    )


def rules_and_routing(
    name: str,
    *,
    prefix: str,
    workspace_id: pulumi.Input[str],
    owned: bool,
    topic_arn: pulumi.Input[str],
    region: str,
    opts: pulumi.ResourceOptions,
) -> None:
    """The rule files as namespaces of the workspace; with a workspace of its own, its alert
    manager, sending everything to the alert topic."""
    for kind in RULE_FILES:
        aws.amp.RuleGroupNamespace(
            f"{name}-rules-{kind}",
            name=physical_name(prefix, kind, limit=NAME_RULES[RULE_NAMESPACE].limit),
            workspace_id=workspace_id,
            data=rule_file(kind),
            opts=opts,
        )
    if owned:
        aws.amp.AlertManagerDefinition(
            f"{name}-alert-manager",
            workspace_id=workspace_id,
            definition=pulumi.Output.from_input(topic_arn).apply(
                lambda arn: alert_manager_definition(arn, region)
            ),
            opts=opts,
        )


def kube_state_metrics_values() -> dict[str, Any]:
    """Chart values: the chart's non-root defaults, sized requests, the collectors we read."""
    return {
        "replicas": 1,
        "collectors": list(KSM_COLLECTORS),
        # Its README's rule of thumb; low CPU limits make it buffer (and grow), so none.
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "256Mi"},
        },
        "podLabels": {"app.kubernetes.io/part-of": "agent-platform"},
    }


def kube_state_metrics(
    name: str, opts: pulumi.ResourceOptions, after: Sequence[pulumi.Resource]
) -> k8s.helm.v3.Release:
    """kube-state-metrics (pinned chart) in kube-system: pod, HPA and deployment state."""
    chart = KUBE_STATE_METRICS
    return k8s.helm.v3.Release(
        f"{name}-kube-state-metrics",
        name=KSM_APP,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        namespace=KSM_NAMESPACE,
        values=kube_state_metrics_values(),
        cleanup_on_fail=True,
        max_history=5,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(after))),
    )
