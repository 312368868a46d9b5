"""Existing-VPC mode: the stack deploys into a VPC it does not own, checked at preview."""

from __future__ import annotations

import dataclasses
import json
import shutil

import boto3
import pytest
from moto import mock_aws

from infra.__main__ import main
from infra.offline.networks import (
    EXAMPLE_DATABASE,
    EXAMPLE_NETWORK,
    EXAMPLE_PRIVATE,
    EXAMPLE_PUBLIC,
    EXAMPLE_VPC_ID,
    Table,
)
from tests.infra.moto_network import MotoNetwork
from tests.infra.pulumi_harness import ROOT, config_error, run_program

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SHARED = {
    "vpcId": EXAMPLE_VPC_ID,
    "publicSubnetIds": EXAMPLE_PUBLIC,
    "privateSubnetIds": EXAMPLE_PRIVATE,
    "databaseSubnetIds": EXAMPLE_DATABASE,
}
# What the stack must not create in a VPC it does not own.
NETWORK_TYPES = (
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:ec2/routeTable:RouteTable",
    "aws:ec2/route:Route", "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/flowLog:FlowLog",
)  # fmt: skip


def netpol(graph, name: str) -> dict:
    (found,) = [p for p in graph.of_type(NETPOL) if p.get("metadata.name") == name]
    return found.get("spec")


@pytest.fixture(scope="module")
def shared():
    return run_program("pr-7", SHARED)


def test_review_stacks_share_the_vpc_and_create_no_network_of_their_own(shared):
    assert [r.type for r in shared.resources if r.type in NETWORK_TYPES] == []
    workload = shared.one("aws:ec2/securityGroup:SecurityGroup", "network-workload-sg")
    assert workload.get("vpcId") == EXAMPLE_VPC_ID  # each stack still has its own group
    assert shared.outputs["vpcId"] == EXAMPLE_VPC_ID
    assert shared.outputs["availabilityZones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_each_tier_uses_the_configured_subnets(shared):
    assert shared.one("eks:index:Cluster").get("privateSubnetIds") == EXAMPLE_PRIVATE
    assert shared.one("eks:index:ManagedNodeGroup").get("subnetIds") == EXAMPLE_PRIVATE
    assert shared.one("aws:lb/loadBalancer:LoadBalancer").get("subnets") == EXAMPLE_PUBLIC
    assert shared.one("aws:rds/subnetGroup:SubnetGroup").get("subnetIds") == EXAMPLE_DATABASE
    cache = shared.one("aws:elasticache/subnetGroup:SubnetGroup")
    assert cache.get("subnetIds") == EXAMPLE_DATABASE
    assert shared.one("aws:lb/targetGroup:TargetGroup").get("vpcId") == EXAMPLE_VPC_ID


def test_in_a_shared_vpc_the_api_admits_only_the_load_balancers_subnets(shared):
    # Other stacks' pods share the private subnets: the VPC's CIDR would admit them.
    assert netpol(shared, "api-ingress")["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": c}} for c in ("10.20.0.0/24", "10.20.1.0/24",
                                                        "10.20.2.0/24")],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]  # fmt: skip
    egress = netpol(shared, "app-egress")["egress"][0]["to"]
    assert egress == [{"ipBlock": {"cidr": f"10.20.{n}.0/24"}} for n in (240, 241, 242)]


def test_the_existing_vpc_mode_renders_from_a_stack_file(tmp_path, capsys):
    """README "Deploying into an existing VPC": a review stack with the example network's ids."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    lines = "".join(
        f"  agent-platform:{key}: {json.dumps(value)}\n" for key, value in SHARED.items()
    )
    (tmp_path / "Pulumi.pr-12.yaml").write_text("config:\n" + lines)
    out = tmp_path / "out"
    assert main(["render", "--stack", "pr-12", "--out", str(out), "--project-dir",
                 str(tmp_path)]) == 0  # fmt: skip
    assert "aws:ec2/vpc:Vpc" not in capsys.readouterr().out  # the summary lists what is created
    document = json.loads((out / "resources.json").read_text())
    assert not [r for r in document["resources"] if r["type"] in NETWORK_TYPES]
    assert document["outputs"]["privateSubnetIds"] == EXAMPLE_PRIVATE


# --- what the preview checks, by config and by looking the subnets up -----------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"publicSubnetIds": EXAMPLE_PUBLIC},
         "agent-platform:publicSubnetIds: set while vpcId is empty; allowed: []"),
        ({**SHARED, "privateSubnetIds": EXAMPLE_PRIVATE[:1]},
         "agent-platform:privateSubnetIds: 1 subnet(s) while vpcId is set; allowed: subnets in "
         "at least 2 AZs"),
        ({**SHARED, "databaseSubnetIds": [EXAMPLE_PRIVATE[0], *EXAMPLE_DATABASE[1:]]},
         f"agent-platform:databaseSubnetIds: '{EXAMPLE_PRIVATE[0]}' is also in privateSubnetIds"),
        ({**SHARED, "vpcCidr": "10.1.0.0/16"},
         "agent-platform:vpcCidr: set while vpcId is set"),
        ({**SHARED, "natGateways": "single"},
         "agent-platform:natGateways: set while vpcId is set"),
    ],
)  # fmt: skip
def test_config_rules_of_the_existing_vpc_mode(overrides, says):
    assert config_error("pr-7", overrides).startswith(says)


def with_tables(*tables: Table):
    return dataclasses.replace(EXAMPLE_NETWORK, tables=tables)


PUBLIC_RT = Table("rtb-1", [("0.0.0.0/0", "igw-1")], EXAMPLE_PUBLIC)
PRIVATE_RT = Table("rtb-2", [("0.0.0.0/0", "nat-1")], EXAMPLE_PRIVATE)
DATABASE_RT = Table("rtb-3", [], EXAMPLE_DATABASE)


def test_a_database_subnet_with_a_route_out_of_the_vpc_is_refused():
    routed = with_tables(PUBLIC_RT, PRIVATE_RT, Table("rtb-3", [("0.0.0.0/0", "nat-1")],
                                                      EXAMPLE_DATABASE))  # fmt: skip
    assert config_error("pr-7", SHARED, network=routed) == (
        f"agent-platform:databaseSubnetIds: '{EXAMPLE_DATABASE[0]}' routes 0.0.0.0/0 to nat-1; "
        "allowed: subnets without a route out of the VPC"
    )


def test_a_database_subnet_on_a_main_table_that_reaches_the_internet_is_refused():
    # Subnets without an association of their own use the VPC's main route table.
    main_to_igw = with_tables(Table("rtb-0", [("::/0", "eigw-1")], main=True), PUBLIC_RT,
                              PRIVATE_RT)  # fmt: skip
    message = config_error("pr-7", SHARED, network=main_to_igw)
    assert message.startswith(f"agent-platform:databaseSubnetIds: '{EXAMPLE_DATABASE[0]}' "
                              "routes ::/0 to eigw-1")  # fmt: skip


def test_the_fixture_network_passes_with_explicit_tables():
    run_program("pr-7", SHARED, network=with_tables(PUBLIC_RT, PRIVATE_RT, DATABASE_RT))


def test_public_subnets_must_reach_an_internet_gateway():
    no_igw = with_tables(Table("rtb-1", [("0.0.0.0/0", "nat-1")], EXAMPLE_PUBLIC), PRIVATE_RT,
                         DATABASE_RT)  # fmt: skip
    message = config_error("pr-7", SHARED, network=no_igw)
    assert message.startswith(f"agent-platform:publicSubnetIds: '{EXAMPLE_PUBLIC[0]}' has no "
                              "route 0.0.0.0/0 to an internet gateway")  # fmt: skip


def test_private_subnets_must_not_route_to_an_internet_gateway():
    public_private = with_tables(PUBLIC_RT, Table("rtb-2", [("0.0.0.0/0", "igw-1")],
                                                  EXAMPLE_PRIVATE), DATABASE_RT)  # fmt: skip
    message = config_error("pr-7", SHARED, network=public_private)
    assert message.startswith(f"agent-platform:privateSubnetIds: '{EXAMPLE_PRIVATE[0]}' routes "
                              "0.0.0.0/0 to igw-1")  # fmt: skip


def test_a_tier_in_one_az_is_refused():
    one_zone = dataclasses.replace(
        EXAMPLE_NETWORK,
        subnets={**EXAMPLE_NETWORK.subnets,
                 EXAMPLE_DATABASE[1]: ("us-east-1a", "use1-az1", "10.20.241.0/24"),
                 EXAMPLE_DATABASE[2]: ("us-east-1a", "use1-az1", "10.20.242.0/24")},
    )  # fmt: skip
    assert config_error("pr-7", SHARED, network=one_zone) == (
        "agent-platform:databaseSubnetIds: all in us-east-1a; allowed: subnets in at least 2 AZs"
    )


def test_a_private_subnet_in_the_zone_eks_does_not_support_is_refused():
    unsupported = dataclasses.replace(
        EXAMPLE_NETWORK,
        subnets={**EXAMPLE_NETWORK.subnets,
                 EXAMPLE_PRIVATE[1]: ("us-east-1b", "use1-az3", "10.20.32.0/20")},
    )  # fmt: skip
    message = config_error("pr-7", SHARED, network=unsupported)
    assert message.startswith(
        f"agent-platform:privateSubnetIds: '{EXAMPLE_PRIVATE[1]}' is in us-east-1b (use1-az3), "
        "where EKS cannot place a cluster"
    )


def test_a_subnet_of_another_vpc_is_refused():
    stray = "subnet-0f0f0f0f0f0f0f0f0"
    other = dataclasses.replace(
        EXAMPLE_NETWORK,
        other_vpc_subnets={stray: ("vpc-0f0f0f0f", "us-east-1c", "use1-az4", "172.16.0.0/24")},
    )
    message = config_error(
        "pr-7", {**SHARED, "privateSubnetIds": [*EXAMPLE_PRIVATE[:2], stray]}, network=other
    )
    assert message == (
        f"agent-platform:privateSubnetIds: '{stray}' is in vpc-0f0f0f0f, not in vpcId "
        f"({EXAMPLE_VPC_ID}); allowed: subnets of vpcId"
    )


def test_an_unknown_subnet_is_refused_naming_its_key():
    unknown = [*EXAMPLE_PUBLIC[:2], "subnet-0123456789abcdef0"]
    message = config_error("pr-7", {**SHARED, "publicSubnetIds": unknown})
    assert message.startswith(
        "agent-platform:publicSubnetIds: 'subnet-0123456789abcdef0' was not found in us-east-1"
    )
    assert message.endswith("allowed: subnets of vpcId")


# --- against moto: a network built through the EC2 API -------------------------------------


def _moto_network(ec2) -> dict[str, list[str] | str]:
    """A VPC like a network team builds it: per AZ a public, a private and a database subnet."""
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    tiers: dict[str, list[str]] = {"public": [], "private": [], "database": []}
    for i, zone in enumerate(("us-east-1a", "us-east-1b")):
        for j, tier in enumerate(tiers):
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{16 * j + i}.0/24",
                                       AvailabilityZone=zone)["Subnet"]["SubnetId"]  # fmt: skip
            tiers[tier].append(subnet)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=tiers["public"][0], AllocationId=eip)
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0",
                     NatGatewayId=nat["NatGateway"]["NatGatewayId"])  # fmt: skip
    database_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for tier, table in (("public", public_rt), ("private", private_rt), ("database", database_rt)):
        for subnet in tiers[tier]:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return {"vpc": vpc, "igw": igw, "database_rt": database_rt, **tiers}


def test_a_network_built_in_moto_passes_and_breaks_when_the_database_tier_gets_a_route_out():
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        net = _moto_network(ec2)
        config = {
            "vpcId": net["vpc"], "publicSubnetIds": net["public"],
            "privateSubnetIds": net["private"], "databaseSubnetIds": net["database"],
        }  # fmt: skip
        graph = run_program("pr-9", config, network=MotoNetwork(ec2))
        assert graph.one("aws:rds/subnetGroup:SubnetGroup").get("subnetIds") == net["database"]
        assert graph.outputs["availabilityZones"] == ["us-east-1a", "us-east-1b"]

        ec2.create_route(RouteTableId=net["database_rt"], DestinationCidrBlock="0.0.0.0/0",
                         GatewayId=net["igw"])  # fmt: skip
        message = config_error("pr-9", config, network=MotoNetwork(ec2))
        assert message == (
            f"agent-platform:databaseSubnetIds: '{net['database'][0]}' routes 0.0.0.0/0 to "
            f"{net['igw']}; allowed: subnets without a route out of the VPC"
        )
