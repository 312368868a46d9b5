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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from infra.ops.checks import (
    Aws,
    Check,
    Deadline,
    Result,
    cache_check,
    cluster_check,
    database_check,
    load_balancer_check,
    node_group_check,
    node_group_names,
    run_check,
    targets_check,
)
from infra.ops.service import Service

__all__ = ["Check", "Deadline", "Result", "VerifyError", "run_check", "verify"]

DEFAULT_DEADLINE = 600.0  # seconds: a fresh stack's pods may still be rolling out
DEFAULT_INTERVAL = 10.0


class VerifyError(Exception):
    """The outputs could not be read: nothing was checked."""


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
