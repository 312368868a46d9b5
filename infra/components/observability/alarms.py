"""CloudWatch alarms on the AWS side of the stack, each notifying the alert topic.

Thresholds come from the `alarm*` keys (0: no alarm). Load balancer metrics are reported only
when non-zero, so ratios fill gaps with 0 and missing data is "not breaching"; a database or
cache metric that stops arriving leaves its alarm in INSUFFICIENT_DATA instead of paging.
ElastiCache reports per member cluster (`<group>-001`, `<group>-002`, ...), so cache alarms are
per member; replication lag only exists on replicas, and which member is a replica changes with
a failover, so every member has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import OperationsConfig

ALB = "AWS/ApplicationELB"
RDS = "AWS/RDS"
CACHE = "AWS/ElastiCache"
NAT = "AWS/NATGateway"
GIB = 2**30
MIB = 2**20


@dataclass(frozen=True)
class AlarmTargets:
    """What the alarms watch: identifiers as CloudWatch's dimensions name them."""

    load_balancer: pulumi.Input[str]  # arn suffix app/<name>/<id>
    target_group: pulumi.Input[str]  # arn suffix targetgroup/<name>/<id>
    db_instance: pulumi.Input[str]
    cache_group: pulumi.Input[str]  # replication group id
    cache_nodes: int
    nat_gateways: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class Watch:
    """One alarm: a metric (or, with `ratio_of`, errors as a percentage of requests), how it
    is read and when it breaches."""

    what: str  # the alarm is named <prefix>-<what>
    description: str
    namespace: str
    metric: str
    statistic: str  # Sum, Average, Minimum, Maximum or a percentile such as p95
    dimensions: Mapping[str, pulumi.Input[str]]
    operator: str  # >, >= or <
    threshold: float
    period: int = 300
    periods: int = 1  # consecutive breaching periods before it fires
    missing: str = "missing"  # treat_missing_data
    ratio_of: str | None = None  # the request count metric of a ratio alarm


def cache_member_ids(group: pulumi.Input[str], nodes: int) -> list[pulumi.Output[str]]:
    """The member clusters ElastiCache creates for a group of `nodes` (cluster mode off)."""
    return [
        pulumi.Output.from_input(group).apply(lambda g, i=i: f"{g}-{i:03d}")
        for i in range(1, nodes + 1)
    ]


def _alb(s: OperationsConfig, t: AlarmTargets) -> list[Watch]:
    lb = {"LoadBalancer": t.load_balancer}
    tg = {"LoadBalancer": t.load_balancer, "TargetGroup": t.target_group}
    ratio = {"period": 60, "periods": 5, "missing": "notBreaching", "ratio_of": "RequestCount"}
    candidates = [
        (s.alb_5xx_percent, Watch(
            "alb-5xx",
            "5xx returned by the load balancer itself (no healthy target, timeout), "
            "percent of requests",
            ALB, "HTTPCode_ELB_5XX_Count", "Sum", lb, ">", s.alb_5xx_percent, **ratio,
        )),
        (s.target_5xx_percent, Watch(
            "target-5xx", "5xx returned by the service, percent of requests",
            ALB, "HTTPCode_Target_5XX_Count", "Sum", lb, ">", s.target_5xx_percent, **ratio,
        )),
        (s.unhealthy_targets, Watch(
            "unhealthy-targets", "targets failing the /ready health check",
            ALB, "UnHealthyHostCount", "Maximum", tg, ">=", s.unhealthy_targets,
            period=60, periods=5, missing="notBreaching",
        )),
        (s.unhealthy_targets, Watch(
            "no-healthy-targets", "no target can serve: every request fails",
            ALB, "HealthyHostCount", "Minimum", tg, "<", 1,
            period=60, periods=3, missing="breaching",
        )),
        (s.target_response_ms, Watch(
            "target-response-time", "p95 time the service takes to answer (s)",
            ALB, "TargetResponseTime", "p95", lb, ">", s.target_response_ms / 1000,
            periods=2, missing="notBreaching",
        )),
    ]  # fmt: skip
    return [watch for enabled, watch in candidates if enabled]


def _database(s: OperationsConfig, t: AlarmTargets) -> list[Watch]:
    db = {"DBInstanceIdentifier": t.db_instance}
    candidates = [
        (s.db_cpu_percent, Watch(
            "db-cpu", "RDS CPU (percent)",
            RDS, "CPUUtilization", "Average", db, ">", s.db_cpu_percent, periods=3,
        )),
        (s.db_free_storage_gib, Watch(
            "db-free-storage", "RDS free storage (bytes)",
            RDS, "FreeStorageSpace", "Minimum", db, "<", s.db_free_storage_gib * GIB,
        )),
        (s.db_free_memory_mib, Watch(
            "db-free-memory", "RDS freeable memory (bytes)",
            RDS, "FreeableMemory", "Minimum", db, "<", s.db_free_memory_mib * MIB, periods=3,
        )),
        (s.db_connections, Watch(
            "db-connections", "RDS client connections",
            RDS, "DatabaseConnections", "Maximum", db, ">", s.db_connections, periods=3,
        )),
    ]  # fmt: skip
    return [watch for enabled, watch in candidates if enabled]


def _cache(s: OperationsConfig, t: AlarmTargets) -> list[Watch]:
    watches = []
    lag = s.cache_replication_lag_seconds if t.cache_nodes >= 2 else 0
    for i, member in enumerate(cache_member_ids(t.cache_group, t.cache_nodes), start=1):
        node = {"CacheClusterId": member}
        tag = f"cache-{i:03d}"
        candidates = [
            (s.cache_cpu_percent, Watch(
                f"{tag}-cpu", "cache node host CPU (percent)",
                CACHE, "CPUUtilization", "Average", node, ">", s.cache_cpu_percent, periods=3,
            )),
            (s.cache_cpu_percent, Watch(
                f"{tag}-engine-cpu", "cache engine thread CPU (percent)",
                CACHE, "EngineCPUUtilization", "Average", node, ">", s.cache_cpu_percent,
                periods=3,
            )),
            (s.cache_memory_percent, Watch(
                f"{tag}-memory", "cache memory used (percent of maxmemory)",
                CACHE, "DatabaseMemoryUsagePercentage", "Maximum", node, ">",
                s.cache_memory_percent, periods=2,
            )),
            (s.cache_evictions, Watch(
                f"{tag}-evictions", "keys evicted for lack of memory",
                CACHE, "Evictions", "Sum", node, ">=", s.cache_evictions, missing="notBreaching",
            )),
            (lag, Watch(
                f"{tag}-replication-lag", "replica lag behind the primary (s)",
                CACHE, "ReplicationLag", "Maximum", node, ">", lag,
                period=60, periods=5, missing="notBreaching",
            )),
        ]  # fmt: skip
        watches += [watch for enabled, watch in candidates if enabled]
    return watches


def _nat(s: OperationsConfig, t: AlarmTargets) -> list[Watch]:
    if not s.nat_port_allocation_errors:
        return []
    return [
        Watch(
            f"nat-{i}-port-allocation",
            "connections the NAT gateway could not open (no source port left)",
            NAT, "ErrorPortAllocation", "Sum", {"NatGatewayId": nat}, ">=",
            s.nat_port_allocation_errors, missing="notBreaching",
        )
        for i, nat in enumerate(t.nat_gateways, start=1)
    ]  # fmt: skip


def watches(settings: OperationsConfig, targets: AlarmTargets) -> list[Watch]:
    """Every enabled alarm of the stack."""
    return [
        *_alb(settings, targets),
        *_database(settings, targets),
        *_cache(settings, targets),
        *_nat(settings, targets),
    ]


_OPERATORS = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
}


def _queries(watch: Watch) -> dict[str, Any]:
    """A ratio alarm's metric math: 100 * errors / requests per period, gaps as no errors."""

    def query(ident: str, metric: str) -> dict[str, Any]:
        return {
            "id": ident,
            "metric": {
                "namespace": watch.namespace,
                "metric_name": metric,
                "dimensions": dict(watch.dimensions),
                "period": watch.period,
                "stat": watch.statistic,
            },
        }

    return {
        "metric_queries": [
            query("requests", watch.ratio_of or ""),
            query("errors", watch.metric),
            {
                "id": "ratio",
                "expression": "100 * FILL(errors, 0) / FILL(requests, 1)",
                "label": f"{watch.metric} per 100 {watch.ratio_of}",
                "return_data": True,
            },
        ]
    }


def _single(watch: Watch) -> dict[str, Any]:
    percentile = watch.statistic.startswith("p")
    return {
        "namespace": watch.namespace,
        "metric_name": watch.metric,
        "dimensions": dict(watch.dimensions),
        "statistic": None if percentile else watch.statistic,
        "extended_statistic": watch.statistic if percentile else None,
        "period": watch.period,
    }


def create_alarms(
    name: str,
    *,
    prefix: str,
    settings: OperationsConfig,
    targets: AlarmTargets,
    topic_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> dict[str, aws.cloudwatch.MetricAlarm]:
    """One MetricAlarm per enabled watch, notifying the topic when it fires and clears."""
    alarms = {}
    for watch in watches(settings, targets):
        alarms[watch.what] = aws.cloudwatch.MetricAlarm(
            f"{name}-{watch.what}",
            name=f"{prefix}-{watch.what}",
            alarm_description=f"{prefix}: {watch.description}. First response: README, "
            "Operations, CloudWatch alarms.",
            comparison_operator=_OPERATORS[watch.operator],
            threshold=watch.threshold,
            evaluation_periods=watch.periods,
            datapoints_to_alarm=watch.periods,
            treat_missing_data=watch.missing,
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            opts=opts,
            **(_queries(watch) if watch.ratio_of else _single(watch)),
        )
    return alarms
