"""Prod operability: what an on-call engineer needs before the first incident.

In prod, the ALB keeps access logs, the WAF logs its requests with the Authorization header
redacted, and alarms that notify someone watch the ALB's own 5xx, unhealthy targets, the RDS
instance's free storage and every cache node's memory. Alarms are linked to what they watch
through the property dependencies of their dimensions (names are not known during a preview).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import (
    UNKNOWN,
    dependencies,
    get,
    is_prod,
    is_true,
    items,
    number,
    resource_environment,
    stack_environment,
)

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RDS_INSTANCE = "aws:rds/instance:Instance"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
WAF_LOG_PREFIX = "aws-waf-logs-"
REDACTED_HEADER = "authorization"

# What an alarm must watch, per resource type: (metric names, what the message calls it).
REQUIRED_ALARMS: dict[str, list[tuple[frozenset[str], str]]] = {
    LOAD_BALANCER: [
        (frozenset({"HTTPCode_ELB_5XX_Count"}), "its 5xx (HTTPCode_ELB_5XX_Count)"),
        (frozenset({"UnHealthyHostCount"}), "unhealthy targets (UnHealthyHostCount)"),
    ],
    RDS_INSTANCE: [(frozenset({"FreeStorageSpace"}), "free storage (FreeStorageSpace)")],
    REPLICATION_GROUP: [
        (
            frozenset({"DatabaseMemoryUsagePercentage", "BytesUsedForCache"}),
            "memory (DatabaseMemoryUsagePercentage) of each node",
        )
    ],
}


def _is_application(lb: Any) -> bool:
    return get(lb.props, "loadBalancerType", default="application") == "application"


def _access_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LOAD_BALANCER or not _is_application(args):
        return
    if not is_prod(resource_environment(args.provider)):
        return
    logs = get(args.props, "accessLogs")
    if logs is UNKNOWN:
        return
    enabled, bucket = get(logs, "enabled"), get(logs, "bucket")
    if enabled is UNKNOWN or bucket is UNKNOWN:
        return
    if not is_true(enabled) or not bucket:
        report(
            f"prod ALB {args.name!r} keeps no access logs: set accessLogs with a bucket and "
            "enabled=true."
        )


def _redacts_authorization(config: Any) -> bool | None:
    fields = get(config.props, "redactedFields")
    if fields is UNKNOWN:
        return None
    names = [get(f, "singleHeader", "name") for f in items(fields)]
    if any(n is UNKNOWN for n in names):
        return None
    return any(isinstance(n, str) and n.lower() == REDACTED_HEADER for n in names)


def _waf_logging(args: StackValidationArgs, report: ReportViolation) -> None:
    if not is_prod(stack_environment(args.resources)):
        return
    logged: dict[str, Any] = {}
    for config in args.resources:
        if config.resource_type == WAF_LOGGING:
            for acl in dependencies(config, "resourceArn", WEB_ACL):
                logged[acl.urn] = config
    for acl in args.resources:
        if acl.resource_type != WEB_ACL:
            continue
        config = logged.get(acl.urn)
        if config is None:
            report(
                f"prod web ACL {acl.name!r} logs no requests: add a logging configuration.", acl.urn
            )
            continue
        if _redacts_authorization(config) is False:
            report(
                f"prod WAF logging {config.name!r} writes clients' API keys: redact the "
                f"{REDACTED_HEADER!r} header (redactedFields singleHeader).",
                config.urn,
            )
        for destination in items(get(config.props, "logDestinationConfigs")):
            name = (
                destination.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
                if isinstance(destination, str)
                else ""
            )
            if isinstance(destination, str) and not name.startswith(WAF_LOG_PREFIX):
                report(
                    f"WAF logging {config.name!r} sends to {name!r}: WAF accepts only "
                    f"destinations named {WAF_LOG_PREFIX}*.",
                    config.urn,
                )


def _alarm_metrics(alarm: Any) -> set[str]:
    names = {get(alarm.props, "metricName")}
    names |= {get(q, "metric", "metricName") for q in items(get(alarm.props, "metricQueries"))}
    return {n for n in names if isinstance(n, str)}


def _notifies(alarm: Any) -> bool:
    actions = get(alarm.props, "alarmActions")
    return actions is UNKNOWN or bool(items(actions))


def _watched(alarms: Iterable[Any], target: Any) -> list[Any]:
    """Alarms whose dimensions (or metric queries) were computed from `target`."""
    found = []
    for alarm in alarms:
        linked = dependencies(alarm, "dimensions") + dependencies(alarm, "metricQueries")
        if any(d.urn == target.urn for d in linked):
            found.append(alarm)
    return found


def _alarms(args: StackValidationArgs, report: ReportViolation) -> None:
    if not is_prod(stack_environment(args.resources)):
        return
    alarms = [r for r in args.resources if r.resource_type == ALARM]
    for resource in args.resources:
        needs = REQUIRED_ALARMS.get(resource.resource_type)
        if not needs or (resource.resource_type == LOAD_BALANCER and not _is_application(resource)):
            continue
        watching = [a for a in _watched(alarms, resource) if _notifies(a)]
        for metrics, what in needs:
            count = sum(1 for a in watching if _alarm_metrics(a) & metrics)
            wanted = 1
            if resource.resource_type == REPLICATION_GROUP:
                nodes = number(get(resource.props, "numCacheClusters"))
                wanted = int(nodes) if nodes else 1
            if count < wanted:
                report(
                    f"prod {resource.name!r} has no alarm that notifies anyone on {what}: "
                    f"found {count}, need {wanted}.",
                    resource.urn,
                )


PROD_ALB_ACCESS_LOGS = ResourceValidationPolicy(
    name="prod-alb-access-logs",
    description="In prod, application load balancers write access logs to S3.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_access_logs,
)
PROD_WAF_LOGGING = StackValidationPolicy(
    name="prod-waf-logging",
    description="In prod, every web ACL logs to an aws-waf-logs- destination with the "
    "Authorization header redacted.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_waf_logging,
)
PROD_ALARMS = StackValidationPolicy(
    name="prod-alarms",
    description="In prod, alarms with actions watch the ALB's 5xx and unhealthy targets, RDS "
    "free storage and each cache node's memory.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_alarms,
)

POLICIES = [PROD_ALB_ACCESS_LOGS, PROD_WAF_LOGGING, PROD_ALARMS]
