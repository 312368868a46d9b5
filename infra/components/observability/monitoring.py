"""Monitoring component: metrics, alerts, alarms, dashboards and log shipping of a stack.

- Prometheus (prometheus.py): an AMP workspace (or the configured one), the managed scraper of
  the cluster, kube-state-metrics, the rule files of observability/rules as rule namespaces and
  the alert manager definition of observability/alertmanager.yml.
- Alerts (alerting.py): one SNS topic, encrypted with the stack's telemetry key, that the alert
  manager and every CloudWatch alarm (alarms.py) publish to; `alarmEmails` subscribe to it.
- A CloudWatch dashboard of the AWS side (dashboard.py).
- Logs (logging.py): Fluent Bit ships container logs to the group Sinks created; the WAF logs
  to the bucket Sinks created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.observability import prometheus
from infra.components.observability.alarms import AlarmTargets, cache_member_ids, create_alarms
from infra.components.observability.alerting import alert_topic
from infra.components.observability.dashboard import DashboardTargets, dashboard_body
from infra.components.observability.logging import container_logs, waf_logging
from infra.components.observability.sinks import Sinks
from infra.config import OperationsConfig


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of the Monitoring component."""

    settings: OperationsConfig  # the stack's operations keys
    name_prefix: str  # `<project>-<stack>`: alarm, topic, dashboard and workspace names
    account_id: str
    region: str
    partition: str
    sinks: Sinks
    cluster_name: str
    namespace: str  # the service's namespace (the rules read it)
    network: prometheus.ScraperNetwork
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    cluster_ready: Sequence[pulumi.Resource]  # nodes and DNS, before any pod
    alarm_targets: AlarmTargets
    web_acl_arn: pulumi.Input[str]
    web_acl_name: pulumi.Input[str]


class Monitoring(pulumi.ComponentResource):
    """Prometheus pipeline, alert topic, alarms, dashboard and log shipping."""

    topic_arn: pulumi.Output[str]
    workspace_arn: pulumi.Output[str]
    workspace_endpoint: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s, prefix = args.settings, args.name_prefix

        workspace_arn, workspace_id, owned = prometheus.workspace(
            name, prefix, s.prometheus_workspace_arn, child
        )
        topic = alert_topic(
            f"{name}-alerts",
            prefix=prefix,
            key_arn=args.sinks.key_arn,
            workspace_arn=workspace_arn,
            emails=s.alarm_emails,
            account_id=args.account_id,
            region=args.region,
            partition=args.partition,
            opts=child,
        )
        ksm = prometheus.kube_state_metrics(name, child, args.cluster_ready)
        prometheus.scraper(
            name,
            prefix=prefix,
            cluster_arn=f"arn:{args.partition}:eks:{args.region}:{args.account_id}:"
            f"cluster/{args.cluster_name}",
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            workspace_arn=workspace_arn,
            net=args.network,
            opts=child,
            after=[*args.cluster_ready, ksm],
        )
        prometheus.rules_and_routing(
            name,
            prefix=prefix,
            workspace_id=workspace_id,
            owned=owned,
            topic_arn=topic.arn,
            region=args.region,
            opts=child,
        )

        container_logs(
            name,
            cluster_name=args.cluster_name,
            region=args.region,
            log_group=args.sinks.container_log_group,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            opts=child,
            after=args.cluster_ready,
        )
        waf_logging(
            name,
            web_acl_arn=args.web_acl_arn,
            bucket_arn=args.sinks.waf_log_bucket_arn,
            opts=child,
        )

        alarms = create_alarms(
            f"{name}-alarm",
            prefix=prefix,
            settings=s,
            targets=args.alarm_targets,
            topic_arn=topic.arn,
            opts=child,
        )
        t = args.alarm_targets
        body = pulumi.Output.all(
            t.load_balancer,
            t.target_group,
            args.web_acl_name,
            t.db_instance,
            pulumi.Output.all(*cache_member_ids(t.cache_group, t.cache_nodes)),
            pulumi.Output.all(*t.nat_gateways),
            args.sinks.container_log_group.name,
            pulumi.Output.all(*[a.arn for a in alarms.values()]),
        ).apply(
            lambda v: dashboard_body(
                DashboardTargets(args.region, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
            )
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=prefix, dashboard_body=body, opts=child
        )

        self.topic_arn = topic.arn
        self.workspace_arn = workspace_arn
        self.workspace_endpoint = workspace_id.apply(
            lambda ws: f"https://aps-workspaces.{args.region}.amazonaws.com/workspaces/{ws}/"
        )
        self.dashboard_name = dashboard.dashboard_name
        self.alarm_names = [a.name for a in alarms.values()]
        self.register_outputs(
            {
                "topicArn": self.topic_arn,
                "workspaceArn": self.workspace_arn,
                "dashboardName": self.dashboard_name,
            }
        )
