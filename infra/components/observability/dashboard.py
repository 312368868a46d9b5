"""The CloudWatch dashboard of the AWS side: load balancer, WAF, RDS, ElastiCache, NAT, the
alarms' states and the service's recent errors from the container logs.

The service's own metrics (requests, latency per route, sessions, tasks, model calls) are in
the Grafana dashboard over Prometheus (observability/grafana/agent-platform.json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 12
HEIGHT = 6

ERRORS_QUERY = (
    "fields @timestamp, kubernetes.pod_name, data.level, data.msg, data.status, data.request_id"
    ' | filter data.level in ["error", "critical"] or data.status >= 500'
    " | sort @timestamp desc | limit 100"
)


@dataclass(frozen=True)
class DashboardTargets:
    """Resolved identifiers the widgets chart."""

    region: str
    load_balancer: str  # arn suffix
    target_group: str  # arn suffix
    web_acl: str  # name
    db_instance: str
    cache_members: Sequence[str]
    nat_gateways: Sequence[str]
    container_log_group: str
    alarm_arns: Sequence[str]


def _metrics(
    title: str, region: str, metrics: list[list[Any]], stat: str = "Sum", period: int = 60
) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stat": stat,
            "period": period,
            "metrics": metrics,
        },
    }


def _per(namespace: str, names: Sequence[str], dimension: str, values: Sequence[str], **opts):
    return [
        [namespace, name, dimension, value, {**opts, "label": f"{name} {value}"}]
        for value in values
        for name in names
    ]


def widgets(t: DashboardTargets) -> list[dict[str, Any]]:
    """The widgets, in reading order (two per row)."""
    alb = ["AWS/ApplicationELB"]
    lb = ["LoadBalancer", t.load_balancer]
    tg = ["TargetGroup", t.target_group, "LoadBalancer", t.load_balancer]
    waf = ["WebACL", t.web_acl, "Region", t.region, "Rule", "ALL"]
    db = ["DBInstanceIdentifier", t.db_instance]
    items = [
        _metrics("ALB requests and errors", t.region, [
            [*alb, "RequestCount", *lb],
            [*alb, "HTTPCode_ELB_5XX_Count", *lb],
            [*alb, "HTTPCode_Target_5XX_Count", *lb],
            [*alb, "HTTPCode_Target_4XX_Count", *lb],
        ]),
        _metrics("Target response time (s)", t.region, [
            [*alb, "TargetResponseTime", *lb, {"stat": "p50"}],
            [*alb, "TargetResponseTime", *lb, {"stat": "p95"}],
            [*alb, "TargetResponseTime", *lb, {"stat": "p99"}],
        ], stat="p95"),
        _metrics("Targets", t.region, [
            [*alb, "HealthyHostCount", *tg],
            [*alb, "UnHealthyHostCount", *tg],
        ], stat="Minimum"),
        _metrics("WAF requests", t.region, [
            ["AWS/WAFV2", "AllowedRequests", *waf],
            ["AWS/WAFV2", "BlockedRequests", *waf],
        ]),
        _metrics("RDS CPU (%) and connections", t.region, [
            ["AWS/RDS", "CPUUtilization", *db],
            ["AWS/RDS", "DatabaseConnections", *db, {"yAxis": "right"}],
        ], stat="Average", period=300),
        _metrics("RDS free storage and memory (bytes)", t.region, [
            ["AWS/RDS", "FreeStorageSpace", *db],
            ["AWS/RDS", "FreeableMemory", *db],
        ], stat="Minimum", period=300),
        _metrics("Cache CPU and memory (%)", t.region, _per(
            "AWS/ElastiCache",
            ["CPUUtilization", "EngineCPUUtilization", "DatabaseMemoryUsagePercentage"],
            "CacheClusterId", t.cache_members,
        ), stat="Average", period=300),
        _metrics("Cache evictions and replication lag (s)", t.region, [
            *_per("AWS/ElastiCache", ["Evictions"], "CacheClusterId", t.cache_members),
            *_per("AWS/ElastiCache", ["ReplicationLag"], "CacheClusterId", t.cache_members,
                  stat="Maximum", yAxis="right"),
        ], period=300),
        _metrics("NAT gateways", t.region, _per(
            "AWS/NATGateway", ["ErrorPortAllocation", "PacketsDropCount"], "NatGatewayId",
            t.nat_gateways,
        ), period=300),
        {
            "type": "alarm",
            "width": WIDTH,
            "height": HEIGHT,
            "properties": {"title": "Alarms", "alarms": list(t.alarm_arns)},
        },
        {
            "type": "log",
            "width": 2 * WIDTH,
            "height": HEIGHT,
            "properties": {
                "title": "Service errors (container logs)",
                "region": t.region,
                "view": "table",
                "query": f"SOURCE '{t.container_log_group}' | {ERRORS_QUERY}",
            },
        },
    ]  # fmt: skip
    return [w for w in items if w["type"] != "alarm" or w["properties"]["alarms"]]


def dashboard_body(targets: DashboardTargets) -> str:
    """The dashboard's JSON body, widgets laid out two per row."""
    laid_out = []
    x = y = 0
    for widget in widgets(targets):
        if x + widget["width"] > 2 * WIDTH:
            x, y = 0, y + HEIGHT
        laid_out.append({**widget, "x": x, "y": y})
        x += widget["width"]
    return json.dumps({"widgets": laid_out}, sort_keys=True)
