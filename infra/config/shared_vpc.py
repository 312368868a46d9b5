"""Existing-VPC mode: the configured VPC and subnets, looked up and checked before any resource.

With `vpcId` set the stack creates no network of its own, so several (review) stacks can share
one VPC and its NAT gateways. What the stack relies on is checked at preview, through the same
data sources `pulumi preview` calls (`aws.ec2.get_subnet`, `get_route_tables`,
`get_route_table`), and any problem is a one-line `ConfigError` naming the key:

- every subnet exists and belongs to `vpcId`;
- each tier spans at least 2 AZs (EKS, the ALB and the RDS and ElastiCache subnet groups need
  two), and no private subnet lies in a zone EKS does not support;
- public subnets route 0.0.0.0/0 to an internet gateway (the ALB is internet-facing);
- private subnets do not route to an internet gateway (nodes have no public addresses);
- database subnets have no route out of the VPC at all.

A subnet without an explicit route table association uses the VPC's main route table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import checks
from infra.config.sections.stack import SUBNET_KEYS, NetworkConfig
from infra.config.spec import NAMESPACE, ConfigError

INTERNET_DESTINATIONS = ("0.0.0.0/0", "::/0")
INTERNET_TARGETS = ("igw-", "nat-", "eigw-")  # internet, NAT and egress-only internet gateways


@dataclass(frozen=True)
class Subnet:
    """What the stack needs to know about one existing subnet."""

    id: str
    vpc_id: str
    zone: str
    zone_id: str
    cidr: str


@dataclass(frozen=True)
class Route:
    """One route of a route table: where to, through what."""

    destination: str
    target: str


@dataclass(frozen=True)
class SharedVpc:
    """The checked subnets of the existing VPC, by tier."""

    vpc_id: str
    public: tuple[Subnet, ...]
    private: tuple[Subnet, ...]
    database: tuple[Subnet, ...]

    @property
    def zones(self) -> list[str]:
        """The AZs of the cluster's (private) subnets, in name order."""
        return sorted({s.zone for s in self.private})


def _tier_of(key: str) -> str:
    return SUBNET_KEYS[key].removesuffix("_subnet_ids")


def _fail(key: str, text: str) -> ConfigError:
    return ConfigError(f"{NAMESPACE}:{key}: {text}")


def look_up(settings: NetworkConfig, region: str, provider: aws.Provider) -> SharedVpc:
    """Read the configured subnets and route tables and check them (raises ConfigError)."""
    opts = pulumi.InvokeOptions(provider=provider)
    tiers: dict[str, tuple[Subnet, ...]] = {}
    for key, field in SUBNET_KEYS.items():
        tiers[_tier_of(key)] = tuple(
            _subnet(subnet_id, key, region, opts) for subnet_id in getattr(settings, field)
        )
    vpc = SharedVpc(settings.vpc_id, **tiers)
    check(vpc, _routes_by_subnet(settings.vpc_id, opts))
    return vpc


def _subnet(subnet_id: str, key: str, region: str, opts: pulumi.InvokeOptions) -> Subnet:
    try:
        found = aws.ec2.get_subnet(id=subnet_id, opts=opts)
    except Exception as exc:  # an invoke error: the subnet is not there (or not visible)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(
            key, f"{subnet_id!r} was not found in {region} ({reason}); allowed: subnets of vpcId"
        ) from None
    return Subnet(
        subnet_id, found.vpc_id, found.availability_zone, found.availability_zone_id,
        found.cidr_block,
    )  # fmt: skip


def _routes_by_subnet(vpc_id: str, opts: pulumi.InvokeOptions) -> dict[str, list[Route]]:
    """Subnet id -> routes of its route table; key "" holds the main table's routes."""
    by_subnet: dict[str, list[Route]] = {}
    for table_id in aws.ec2.get_route_tables(vpc_id=vpc_id, opts=opts).ids:
        table = aws.ec2.get_route_table(route_table_id=table_id, opts=opts)
        routes = [_route(r) for r in table.routes or []]
        for association in table.associations or []:
            if association.main:
                by_subnet[""] = routes
            elif association.subnet_id:
                by_subnet[association.subnet_id] = routes
    return by_subnet


# Route targets, in the provider's route results.
_TARGETS = (
    "gateway_id", "nat_gateway_id", "egress_only_gateway_id", "transit_gateway_id",
    "vpc_peering_connection_id", "network_interface_id", "vpc_endpoint_id", "instance_id",
)  # fmt: skip


def _route(route) -> Route:
    destination = route.cidr_block or route.ipv6_cidr_block or route.destination_prefix_list_id
    target = next((getattr(route, name) for name in _TARGETS if getattr(route, name)), "")
    return Route(destination or "", target)


def check(vpc: SharedVpc, routes: Mapping[str, Sequence[Route]]) -> None:
    """The rules of the module docstring; the first broken one raises ConfigError."""
    for key in SUBNET_KEYS:
        subnets: tuple[Subnet, ...] = getattr(vpc, _tier_of(key))
        for subnet in subnets:
            if subnet.vpc_id != vpc.vpc_id:
                raise _fail(
                    key,
                    f"{subnet.id!r} is in {subnet.vpc_id}, not in vpcId ({vpc.vpc_id}); "
                    "allowed: subnets of vpcId",
                )
        zones = sorted({s.zone for s in subnets})
        if len(zones) < 2:
            raise _fail(key, f"all in {', '.join(zones)}; allowed: subnets in at least 2 AZs")
    for subnet in vpc.private:
        if subnet.zone_id in checks.EKS_UNSUPPORTED_ZONE_IDS:
            raise _fail(
                "privateSubnetIds",
                f"{subnet.id!r} is in {subnet.zone} ({subnet.zone_id}), where EKS cannot place "
                f"a cluster; allowed: subnets outside {', '.join(checks.EKS_UNSUPPORTED_ZONE_IDS)}",
            )

    def routes_of(subnet: Subnet) -> Sequence[Route]:
        return routes.get(subnet.id, routes.get("", ()))

    for subnet in vpc.public:
        if not any(
            r.destination == "0.0.0.0/0" and r.target.startswith("igw-") for r in routes_of(subnet)
        ):
            raise _fail(
                "publicSubnetIds",
                f"{subnet.id!r} has no route 0.0.0.0/0 to an internet gateway; allowed: public "
                "subnets (the internet-facing ALB lives in them)",
            )
    for subnet in vpc.private:
        for route in routes_of(subnet):
            if route.target.startswith("igw-"):
                raise _fail(
                    "privateSubnetIds",
                    f"{subnet.id!r} routes {route.destination} to {route.target}; allowed: "
                    "private subnets (out through a NAT gateway, not an internet gateway)",
                )
    for subnet in vpc.database:
        for route in routes_of(subnet):
            if route.destination in INTERNET_DESTINATIONS or route.target.startswith(
                INTERNET_TARGETS
            ):
                raise _fail(
                    "databaseSubnetIds",
                    f"{subnet.id!r} routes {route.destination} to {route.target}; allowed: "
                    "subnets without a route out of the VPC",
                )
