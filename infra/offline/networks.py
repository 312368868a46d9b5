"""Existing networks the offline mocks know, for the lookups of existing-VPC mode.

`PlatformMocks` answers `aws.ec2.get_subnet`, `get_route_tables` and `get_route_table` from a
`NetworkLookup`. By default that is `EXAMPLE_NETWORK`: a shared VPC with public, private and
database subnets in three AZs, the way a network team (or a "network" stack) would build one. A
stack configured with its ids renders offline (README "Deploying into an existing VPC"); other
ids are "not found", as AWS would say of a subnet it does not know. The tests substitute
networks of their own, including one read from moto.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# The shape of the provider's route results (empty strings for what a route does not use).
_ROUTE_FIELDS = (
    "carrierGatewayId", "cidrBlock", "coreNetworkArn", "destinationPrefixListId",
    "egressOnlyGatewayId", "gatewayId", "instanceId", "ipv6CidrBlock", "localGatewayId",
    "natGatewayId", "networkInterfaceId", "odbNetworkArn", "transitGatewayId", "vpcEndpointId",
    "vpcPeeringConnectionId",
)  # fmt: skip


class NetworkLookup(Protocol):
    """Answers the EC2 data sources of existing-VPC mode (camelCase results, as on the wire)."""

    def subnet(self, subnet_id: str) -> Mapping[str, Any]:
        """`getSubnet` by id; raises LookupError for an unknown subnet."""

    def route_table_ids(self, vpc_id: str) -> list[str]:
        """`getRouteTables` of a VPC."""

    def route_table(self, route_table_id: str) -> Mapping[str, Any]:
        """`getRouteTable` by id."""


def route(destination: str, target: str) -> dict[str, str]:
    """A route result: `destination` (IPv4 or IPv6 CIDR) through `target` (a gateway id)."""
    out = dict.fromkeys(_ROUTE_FIELDS, "")
    out["ipv6CidrBlock" if ":" in destination else "cidrBlock"] = destination
    kind = {"nat-": "natGatewayId", "eigw-": "egressOnlyGatewayId", "tgw-": "transitGatewayId"}
    out[next((v for k, v in kind.items() if target.startswith(k)), "gatewayId")] = target
    return out


@dataclass(frozen=True)
class Table:
    """A route table: its routes and the subnets associated with it (or the VPC's main one)."""

    id: str
    routes: Sequence[tuple[str, str]] = ()  # (destination, target)
    subnets: Sequence[str] = ()
    main: bool = False


@dataclass(frozen=True)
class StaticNetwork:
    """A network described in code: subnets (id -> zone, zone id, CIDR) and route tables."""

    vpc_id: str
    subnets: Mapping[str, tuple[str, str, str]]
    tables: Sequence[Table] = field(default_factory=tuple)
    other_vpc_subnets: Mapping[str, tuple[str, str, str, str]] = field(default_factory=dict)

    def subnet(self, subnet_id: str) -> Mapping[str, Any]:
        if subnet_id in self.subnets:
            vpc, (zone, zone_id, cidr) = self.vpc_id, self.subnets[subnet_id]
        elif subnet_id in self.other_vpc_subnets:
            vpc, zone, zone_id, cidr = self.other_vpc_subnets[subnet_id]
        else:
            raise LookupError(
                f"no matching EC2 Subnet found (the offline render knows the subnets of "
                f"{self.vpc_id} in infra/offline/networks.py)"
            )
        return {
            "id": subnet_id, "arn": f"arn:aws:ec2:::subnet/{subnet_id}", "vpcId": vpc,
            "availabilityZone": zone, "availabilityZoneId": zone_id, "cidrBlock": cidr,
            "state": "available", "mapPublicIpOnLaunch": False, "tags": {},
        }  # fmt: skip

    def route_table_ids(self, vpc_id: str) -> list[str]:
        return [t.id for t in self.tables] if vpc_id == self.vpc_id else []

    def route_table(self, route_table_id: str) -> Mapping[str, Any]:
        table = next(t for t in self.tables if t.id == route_table_id)
        associations = [
            {"subnetId": s, "main": False, "routeTableId": table.id, "gatewayId": "",
             "routeTableAssociationId": f"rtbassoc-{s.removeprefix('subnet-')}"}
            for s in table.subnets
        ]  # fmt: skip
        if table.main:
            associations.append(
                {"subnetId": "", "main": True, "routeTableId": table.id, "gatewayId": "",
                 "routeTableAssociationId": f"rtbassoc-main{table.id.removeprefix('rtb-')}"}
            )  # fmt: skip
        return {
            "id": table.id, "routeTableId": table.id, "vpcId": self.vpc_id, "ownerId": "",
            "arn": "", "tags": {}, "associations": associations,
            "routes": [route(d, t) for d, t in table.routes],
        }  # fmt: skip


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-0e5a{n:02d}{i:011x}" for i in range(1, 4)]


EXAMPLE_VPC_ID = "vpc-0e1a2b3c4d5e6f708"
EXAMPLE_PUBLIC, EXAMPLE_PRIVATE, EXAMPLE_DATABASE = (_ids("subnet", n) for n in (1, 2, 3))
_ZONES = [("us-east-1a", "use1-az1"), ("us-east-1b", "use1-az2"), ("us-east-1c", "use1-az4")]
_NATS = [f"nat-0e5a{i:013x}" for i in range(1, 4)]

#: A shared VPC 10.20.0.0/16 in us-east-1: per AZ a public /24 (to an internet gateway), a
#: private /20 (to the AZ's NAT gateway) and a database /24 (no route out); the main table
#: has no routes.
EXAMPLE_NETWORK = StaticNetwork(
    vpc_id=EXAMPLE_VPC_ID,
    subnets={
        **{s: (*_ZONES[i], f"10.20.{i}.0/24") for i, s in enumerate(EXAMPLE_PUBLIC)},
        **{s: (*_ZONES[i], f"10.20.{16 * (i + 1)}.0/20") for i, s in enumerate(EXAMPLE_PRIVATE)},
        **{s: (*_ZONES[i], f"10.20.{240 + i}.0/24") for i, s in enumerate(EXAMPLE_DATABASE)},
    },
    tables=(
        Table("rtb-0e5a00000000000f0", main=True),
        Table("rtb-0e5a00000000000a1", [("0.0.0.0/0", "igw-0e5a0000000000001")], EXAMPLE_PUBLIC),
        *(
            Table(f"rtb-0e5a00000000000b{i}", [("0.0.0.0/0", _NATS[i])], [subnet])
            for i, subnet in enumerate(EXAMPLE_PRIVATE)
        ),
        Table("rtb-0e5a00000000000c1", [], EXAMPLE_DATABASE),
    ),
)
