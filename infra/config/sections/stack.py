"""Configuration keys of the stack as a whole and of its network.

Each field is one key (see `infra.config.spec.key`); validators are the rules across keys.
"""

from __future__ import annotations

from infra.config import checks
from infra.config.sections.common import RETENTION
from infra.config.spec import (
    ENVIRONMENTS,
    Bool,
    Int,
    Section,
    Text,
    between,
    key,
    one_of,
    optional,
    rule,
)


class StackSettings(Section, title="Stack"):
    environment: Text = key(
        "environment",
        default="",
        check=optional(one_of(*ENVIRONMENTS)),
        allowed="dev | staging | prod",
        help="Which column of defaults applies. Empty: from the stack name (dev, staging, prod; "
        "pr-<n> review stacks are dev).",
    )
    deletion_protection: Bool = key(
        "deletionProtection",
        dev=False,
        staging=True,
        prod=True,
        help="Deletion protection on the RDS instance and the load balancer.",
    )


class NetworkConfig(Section, title="Network"):
    vpc_cidr: Text = key(
        "vpcCidr",
        default="10.0.0.0/16",
        check=rule(
            checks.vpc_cidr,
            "an RFC 1918 IPv4 network with prefix /16 to /20, e.g. 10.0.0.0/16",
            "10.0.0.0/33",
            "10.0.0.1/16",
            "8.8.0.0/16",
            "10.0.0.0/24",
        ),
        help="CIDR of the VPC; subnets are carved from it.",
    )
    az_count: Int = key(
        "azCount",
        default=3,
        check=between(2, 6),
        help="Availability zones used; each gets a public, a private and a database subnet.",
    )
    nat_gateways: Text = key(
        "natGateways",
        dev="single",
        staging="per-az",
        prod="per-az",
        check=one_of("single", "per-az"),
        help="One NAT gateway for all private subnets, or one per AZ (survives an AZ outage).",
    )
    flow_logs: Bool = key(
        "flowLogs",
        dev=False,
        staging=True,
        prod=True,
        help="VPC flow logs (all traffic) to CloudWatch Logs.",
    )
    flow_log_retention_days: Int = key(
        "flowLogRetentionDays", default=90, check=RETENTION, help="Days flow logs are kept."
    )
