"""The checks `python -m infra verify` runs against a deployed stack, and how they are retried.

Each check is one attempt that returns a `Result` (an exception is a failed attempt); tenacity
retries it until it passes or the command's deadline passes (at least one attempt, the last
wait cut to the deadline). The AWS checks use boto3, which takes its endpoint from
`AWS_ENDPOINT_URL` (tests point it at a moto server).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import tenacity

REQUEST_TIMEOUT = 10.0  # seconds per AWS or HTTP call
# Target states that mean "not serving": anything but healthy, or draining out of the group.
NOT_SERVING = ("unhealthy", "unused", "unavailable", "initial")


@dataclass(frozen=True)
class Result:
    """The outcome of one attempt of a check."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Check:
    """A named check: one attempt returns a Result (or raises, which is a failure)."""

    name: str
    attempt: Callable[[], Result]


@dataclass
class Deadline:
    """When to stop retrying, and how long to wait between attempts."""

    seconds: float
    interval: float
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.at = self.clock() + self.seconds

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self.clock()


def _attempt(check: Check) -> Result:
    try:
        return check.attempt()
    except Exception as exc:  # an attempt's error is its failure, retried like one
        return Result(False, f"{type(exc).__name__}: {exc}")


def run_check(
    check: Check, deadline: Deadline, sleep: Callable[[float], None] = time.sleep
) -> Result:
    """Attempt `check` until it passes or the deadline passes (at least once); last Result."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda result: not result.ok),
        stop=lambda _state: deadline.remaining() <= 0,
        wait=lambda _state: min(deadline.interval, deadline.remaining()),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result(),
    )
    return retrying(_attempt, check)


# --- AWS checks ---------------------------------------------------------------------------------


class Aws:
    """boto3 clients for one region, with bounded timeouts."""

    def __init__(self, region: str):
        import boto3
        from botocore.config import Config

        config = Config(
            region_name=region,
            connect_timeout=REQUEST_TIMEOUT,
            read_timeout=REQUEST_TIMEOUT,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self.eks = boto3.client("eks", config=config)
        self.rds = boto3.client("rds", config=config)
        self.elasticache = boto3.client("elasticache", config=config)
        self.elbv2 = boto3.client("elbv2", config=config)


def cluster_check(aws: Aws, cluster: str) -> Result:
    status = aws.eks.describe_cluster(name=cluster)["cluster"]["status"]
    return Result(status == "ACTIVE", f"cluster {cluster} is {status}")


def node_group_names(aws: Aws, outputs: Mapping[str, Any], cluster: str) -> list[str]:
    """`nodeGroupNames` from the outputs, else every node group of the cluster."""
    names = outputs.get("nodeGroupNames")
    if names:
        return [names] if isinstance(names, str) else list(names)
    return aws.eks.list_nodegroups(clusterName=cluster, maxResults=100)["nodegroups"]


def node_group_check(aws: Aws, cluster: str, name: str) -> Result:
    group = aws.eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
    status = group["status"]
    issues = [
        i.get("message", i.get("code", "")) for i in group.get("health", {}).get("issues", [])
    ]
    detail = f"node group {name} is {status}" + (f" ({'; '.join(issues)})" if issues else "")
    return Result(status == "ACTIVE", detail)


def database_check(aws: Aws, identifier: str) -> Result:
    db = aws.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    status, encrypted = db["DBInstanceStatus"], bool(db.get("StorageEncrypted"))
    detail = f"{identifier} is {status}, storage {'encrypted' if encrypted else 'NOT encrypted'}"
    return Result(status == "available" and encrypted, detail)


def cache_check(aws: Aws, group_id: str) -> Result:
    groups = aws.elasticache.describe_replication_groups(ReplicationGroupId=group_id)
    group = groups["ReplicationGroups"][0]
    status = group["Status"]
    transit, at_rest = group.get("TransitEncryptionEnabled"), group.get("AtRestEncryptionEnabled")
    detail = (
        f"{group_id} is {status}, in transit {'encrypted' if transit else 'NOT encrypted'}, "
        f"at rest {'encrypted' if at_rest else 'NOT encrypted'}"
    )
    return Result(status == "available" and bool(transit) and bool(at_rest), detail)


def _load_balancers(aws: Aws) -> Iterator[dict[str, Any]]:
    for page in aws.elbv2.get_paginator("describe_load_balancers").paginate(
        PaginationConfig={"MaxItems": 1000}
    ):
        yield from page["LoadBalancers"]


def load_balancer_check(aws: Aws, dns_name: str) -> Result:
    found = next((lb for lb in _load_balancers(aws) if lb["DNSName"] == dns_name), None)
    if found is None:
        return Result(False, f"no load balancer has DNS name {dns_name}")
    state = found["State"]["Code"]
    return Result(state == "active", f"{found['LoadBalancerName']} is {state}")


def targets_check(aws: Aws, target_group_arn: str) -> Result:
    health = aws.elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    targets = health["TargetHealthDescriptions"]
    healthy = [t for t in targets if t["TargetHealth"]["State"] == "healthy"]
    bad = [t for t in targets if t["TargetHealth"]["State"] in NOT_SERVING]
    group = target_group_arn.rsplit(":", 1)[-1]
    if bad:
        listed = ", ".join(
            f"{t['Target']['Id']}:{t['Target'].get('Port', '')} {t['TargetHealth']['State']}"
            f" ({t['TargetHealth'].get('Reason', 'no reason')}: "
            f"{t['TargetHealth'].get('Description', '')})"
            for t in bad
        )
        return Result(False, f"{len(bad)} of {len(targets)} targets not serving: {listed}")
    if not healthy:
        return Result(False, f"no targets registered in {group}")
    return Result(True, f"{len(healthy)} healthy target(s) in {group}")
