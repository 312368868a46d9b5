"""Answer the existing-VPC lookups from moto: the EC2 API's view of a network, shaped the way
the provider's data sources return it (`infra.offline.networks.NetworkLookup`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from infra.offline.networks import route

# EC2 route field -> the target the provider reports it as.
_TARGETS = (
    "GatewayId", "NatGatewayId", "EgressOnlyInternetGatewayId", "TransitGatewayId",
    "VpcPeeringConnectionId", "NetworkInterfaceId", "InstanceId",
)  # fmt: skip


class MotoNetwork:
    """A `NetworkLookup` over an EC2 client (moto's, in the tests)."""

    def __init__(self, ec2):
        self.ec2 = ec2

    def subnet(self, subnet_id: str) -> Mapping[str, Any]:
        try:
            (found,) = self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        except ClientError as exc:
            raise LookupError(f"no matching EC2 Subnet found ({exc})") from None
        return {
            "id": subnet_id, "arn": found.get("SubnetArn", ""), "vpcId": found["VpcId"],
            "availabilityZone": found["AvailabilityZone"],
            "availabilityZoneId": found["AvailabilityZoneId"], "cidrBlock": found["CidrBlock"],
        }  # fmt: skip

    def route_table_ids(self, vpc_id: str) -> list[str]:
        tables = self.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        return [t["RouteTableId"] for t in tables["RouteTables"]]

    def route_table(self, route_table_id: str) -> Mapping[str, Any]:
        (table,) = self.ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"]
        routes = []
        for r in table["Routes"]:
            target = next((r[k] for k in _TARGETS if r.get(k)), "")
            if target == "local":
                continue  # the provider leaves the VPC's local route out
            destination = r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock", "")
            routes.append(route(destination, target))
        associations = [
            {"subnetId": a.get("SubnetId", ""), "main": a.get("Main", False),
             "routeTableId": route_table_id, "gatewayId": "",
             "routeTableAssociationId": a["RouteTableAssociationId"]}
            for a in table.get("Associations", [])
        ]  # fmt: skip
        return {
            "id": route_table_id, "routeTableId": route_table_id, "vpcId": table["VpcId"],
            "routes": routes, "associations": associations,
        }  # fmt: skip
