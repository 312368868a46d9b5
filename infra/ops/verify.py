"""`python -m infra verify --stack STACK`: is a deployed stack up, healthy and serving?

Reads the stack outputs (`pulumi stack output --json --show-secrets`, or a file), then checks
with boto3 that the EKS cluster and its node groups are ACTIVE, RDS is available and encrypted,
the ElastiCache replication group is available and encrypted, the ALB is active and its target
group has healthy targets only; then over HTTP through the ALB `/health`, `/ready` and a
session round trip (create, chat, end). Each check is retried until it passes or the deadline
is reached, prints one `PASS name: detail` or `FAIL name: detail` line, and the command exits 0
only when every check passed.

boto3 takes the endpoint from `AWS_ENDPOINT_URL` (tests point it at a moto server).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

DEFAULT_DEADLINE = 600.0  # seconds: a fresh stack's pods may still be rolling out
DEFAULT_INTERVAL = 10.0
REQUEST_TIMEOUT = 10.0  # seconds per AWS or HTTP call
# Target states that mean "not serving": anything but healthy, or draining out of the group.
NOT_SERVING = ("unhealthy", "unused", "unavailable", "initial")


class VerifyError(Exception):
    """The outputs could not be read: nothing was checked."""


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


def run_check(
    check: Check, deadline: Deadline, sleep: Callable[[float], None] = time.sleep
) -> Result:
    """Attempt `check` until it passes or the deadline passes (at least once); last Result."""
    while True:
        try:
            result = check.attempt()
        except Exception as exc:  # an attempt's error is its failure, retried like one
            result = Result(False, f"{type(exc).__name__}: {exc}")
        remaining = deadline.remaining()
        if result.ok or remaining <= 0:
            return result
        sleep(min(deadline.interval, remaining))


# --- outputs ------------------------------------------------------------------------------------


def load_outputs(stack: str, path: Path | None) -> dict[str, Any]:
    """The stack outputs from `path`, or from `pulumi stack output` for `stack`."""
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise VerifyError(f"cannot read {path}: {exc.strerror}") from None
    else:
        command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                command, capture_output=True, text=True, timeout=120, check=False
            )
        except FileNotFoundError:
            raise VerifyError("the Pulumi CLI is not installed; pass --outputs FILE") from None
        if done.returncode != 0:
            raise VerifyError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
        text = done.stdout
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerifyError(f"stack outputs are not JSON: {exc}") from None
    if not isinstance(outputs, dict):
        raise VerifyError("stack outputs are not a JSON object")
    return outputs


def _required(outputs: Mapping[str, Any], name: str) -> Any:
    value = outputs.get(name)
    if value in (None, "", []):
        raise LookupError(f"stack output {name!r} is missing")
    return value


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


# --- HTTP checks --------------------------------------------------------------------------------


class Service:
    """The agent service through the load balancer."""

    def __init__(self, base_url: str, api_key: str | None, verify_tls: bool):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=REQUEST_TIMEOUT,
            verify=verify_tls,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def probe(self, path: str) -> Result:
        response = self._client.get(path)
        status = _json(response).get("status", "")
        detail = f"GET {path} -> {response.status_code}" + (f" ({status})" if status else "")
        return Result(response.status_code == 200, detail)

    def session_round_trip(self) -> Result:
        if not self.api_key:
            return Result(False, "no API key: pass --api-key, set AGENT_API_KEY or output apiKeys")
        auth = {"Authorization": f"Bearer {self.api_key}"}
        created = self._client.post("/v1/sessions", json={"user_id": "verify"}, headers=auth)
        if created.status_code != 201:
            return Result(False, f"POST /v1/sessions -> {created.status_code} (want 201)")
        session = _json(created).get("id")
        try:
            chat = self._client.post(
                f"/v1/sessions/{session}/messages",
                json={"content": "verify: reply with anything"},
                headers=auth,
            )
            reply = (_json(chat).get("reply") or {}).get("content", "")
            if chat.status_code not in (200, 201) or not reply:
                return Result(False, f"POST /v1/sessions/{session}/messages -> {chat.status_code}")
        finally:
            ended = self._client.delete(f"/v1/sessions/{session}", headers=auth)
        if ended.status_code != 200:
            return Result(False, f"DELETE /v1/sessions/{session} -> {ended.status_code}")
        return Result(True, f"session {session}: created, answered ({len(reply)} chars), ended")


def _json(response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --- the command --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What the command line says."""

    stack: str
    outputs: Path | None
    deadline: float
    interval: float
    api_key: str | None
    region: str | None
    service_url: str | None
    verify_tls: bool


def _aws_checks(aws: Aws, outputs: Mapping[str, Any]) -> list[Check]:
    def lazily(fn: Callable[..., Result], *names: str) -> Callable[[], Result]:
        return lambda: fn(aws, *(_required(outputs, n) for n in names))

    checks = [Check("eks-cluster", lazily(cluster_check, "clusterName"))]
    try:
        cluster = _required(outputs, "clusterName")
        groups = node_group_names(aws, outputs, cluster)
    except Exception as exc:  # reported as the node group check's failure
        message = f"{type(exc).__name__}: {exc}"
        checks.append(Check("eks-nodegroups", lambda: Result(False, message)))
    else:
        if not groups:
            checks.append(Check("eks-nodegroups", lambda: Result(False, "no node groups")))
        checks += [
            Check(f"eks-nodegroup {g}", lambda g=g: node_group_check(aws, cluster, g))
            for g in groups
        ]
    return [
        *checks,
        Check("rds", lazily(database_check, "dbInstanceIdentifier")),
        Check("elasticache", lazily(cache_check, "cacheReplicationGroupId")),
        Check("alb", lazily(load_balancer_check, "albDnsName")),
        Check("alb-targets", lazily(targets_check, "targetGroupArn")),
    ]


def _api_key(options: Options, outputs: Mapping[str, Any]) -> str | None:
    if options.api_key or os.environ.get("AGENT_API_KEY"):
        return options.api_key or os.environ["AGENT_API_KEY"]
    keys = outputs.get("apiKeys")
    return keys.split(",")[0].strip() if isinstance(keys, str) and keys else None


def verify(options: Options, out: TextIO | None = None) -> bool:
    """Run every check, print one line each and a summary; True when all passed."""
    out = out or sys.stdout
    outputs = load_outputs(options.stack, options.outputs)
    region = (
        options.region
        or outputs.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        raise VerifyError("no region: pass --region, or set AWS_REGION")
    base_url = options.service_url or outputs.get("serviceUrl") or outputs.get("albUrl")
    if not base_url:
        raise VerifyError(
            "no service URL: the outputs have no serviceUrl/albUrl; pass --service-url"
        )

    deadline = Deadline(options.deadline, options.interval)
    service = Service(base_url, _api_key(options, outputs), options.verify_tls)
    checks = [
        *_aws_checks(Aws(region), outputs),
        Check("http-health", lambda: service.probe("/health")),
        Check("http-ready", lambda: service.probe("/ready")),
        Check("http-session", service.session_round_trip),
    ]
    passed = 0
    try:
        for check in checks:
            result = run_check(check, deadline)
            passed += result.ok
            print(f"{'PASS' if result.ok else 'FAIL'} {check.name}: {result.detail}", file=out)
            out.flush()
    finally:
        service.close()
    print(f"verify {options.stack}: {passed}/{len(checks)} checks passed", file=out)
    return passed == len(checks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `verify` subcommand's options."""
    parser.add_argument("--stack", required=True, help="the stack to verify (dev, prod, pr-<n>)")
    parser.add_argument(
        "--outputs", type=Path, help="stack outputs as JSON (default: `pulumi stack output`)"
    )
    parser.add_argument(
        "--deadline", type=_positive, default=DEFAULT_DEADLINE, help="seconds to keep retrying"
    )
    parser.add_argument(
        "--interval", type=_positive, default=DEFAULT_INTERVAL, help="seconds between attempts"
    )
    parser.add_argument("--api-key", help="a client key (default: $AGENT_API_KEY, output apiKeys)")
    parser.add_argument("--region", help="AWS region (default: output region, $AWS_REGION)")
    parser.add_argument("--service-url", help="base URL (default: output serviceUrl, albUrl)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="skip TLS verification (the certificate names your domain, not the ALB's DNS name)",
    )


def options_from(args: argparse.Namespace) -> Options:
    """Options from parsed arguments."""
    return Options(
        stack=args.stack,
        outputs=args.outputs,
        deadline=args.deadline,
        interval=args.interval,
        api_key=args.api_key,
        region=args.region,
        service_url=args.service_url,
        verify_tls=not args.insecure,
    )


def _positive(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value
