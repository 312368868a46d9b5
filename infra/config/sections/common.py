"""Checks several sections share."""

from __future__ import annotations

from infra.config import checks
from infra.config.spec import Check, among, rule

RETENTION = among(
    checks.CLOUDWATCH_RETENTION_DAYS,
    "a CloudWatch Logs retention: " + ", ".join(map(str, checks.CLOUDWATCH_RETENTION_DAYS)),
)
CIDRS = rule(
    checks.ipv4_cidr,
    "IPv4 CIDRs in canonical form such as 203.0.113.0/24, at least one",
    "1.2.3.4/40",
    "0.0.0.0/33",
)


def quantity(allowed: str, *refuses: str) -> Check:
    """A positive Kubernetes quantity (CPU or memory)."""
    return rule(lambda v: (checks.quantity(v) or 0) > 0, allowed, *refuses)
