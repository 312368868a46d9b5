"""Configuration keys of the stack as a whole and of its network.

Each field is one key (see `infra.config.spec.key`); validators are the rules across keys.
"""

from __future__ import annotations

from pydantic import ValidationInfo, model_validator

from infra.config import checks
from infra.config.rules import broken, explicitly_set
from infra.config.sections.common import RETENTION
from infra.config.spec import (
    ENVIRONMENTS,
    Bool,
    Int,
    Names,
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


# Subnet key -> field of NetworkConfig, by tier.
SUBNET_KEYS = {
    "publicSubnetIds": "public_subnet_ids",
    "privateSubnetIds": "private_subnet_ids",
    "databaseSubnetIds": "database_subnet_ids",
}


def _subnets(tier: str, what: str) -> tuple[str, ...]:
    return key(
        f"{tier}SubnetIds",
        default=[],
        check=rule(
            checks.subnet_id,
            f"ids of {tier} subnets of vpcId in at least 2 AZs, such as subnet-0a1b2c3d4e5f60718",
            "subnet-xyz",
        ),
        help=f"Existing-VPC mode: the {tier} subnets ({what}).",
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
    vpc_id: Text = key(
        "vpcId",
        default="",
        check=optional(
            rule(
                checks.vpc_id,
                "a VPC id such as vpc-0a1b2c3d4e5f60718",
                "vpc-xyz",
                "subnet-0a1b2c3d",
            )
        ),
        help="Existing-VPC mode: deploy into this VPC (with the three subnet keys) instead of "
        "creating one. Empty: the stack creates its VPC.",
    )
    public_subnet_ids: Names = _subnets("public", "the internet-facing ALB")
    private_subnet_ids: Names = _subnets("private", "the EKS cluster and its nodes")
    database_subnet_ids: Names = _subnets("database", "RDS and ElastiCache")

    @model_validator(mode="after")
    def _relations(self, info: ValidationInfo) -> NetworkConfig:
        tiers = {key: getattr(self, field) for key, field in SUBNET_KEYS.items()}
        if not self.vpc_id:
            for name, ids in tiers.items():
                if ids:
                    raise broken(name, "set while vpcId is empty; allowed: [] (or set vpcId)")
            return self
        for field in ("vpc_cidr", "az_count", "nat_gateways", "flow_logs"):
            if explicitly_set(self, info, field):
                raise broken(
                    type(self).model_fields[field].alias or field,
                    "set while vpcId is set (the stack creates no VPC, subnets, NAT gateways "
                    "or flow logs); allowed: leave it unset with vpcId",
                )
        seen: dict[str, str] = {}
        for name, ids in tiers.items():
            if len(ids) < 2:
                raise broken(
                    name,
                    f"{len(ids)} subnet(s) while vpcId is set; allowed: subnets in at least 2 AZs",
                )
            for subnet in ids:
                if subnet in seen:
                    raise broken(
                        name, f"{subnet!r} is also in {seen[subnet]}; allowed: one tier per subnet"
                    )
                seen[subnet] = name
        return self

    @property
    def existing_vpc(self) -> bool:
        """Deploy into a VPC the stack does not own."""
        return bool(self.vpc_id)
