"""The network: subnets per AZ carved from the VPC CIDR, gateways, routes, tags, flow logs."""

from __future__ import annotations

import ipaddress
import itertools
import json

import pytest

from infra.components.network import plan_subnets
from infra.config import KEYS_BY_NAME
from infra.offline.mocking import Graph
from tests.infra.pulumi_harness import STACKS, graph_of, run_program

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def subnets(graph: Graph, tier: str) -> list:
    return [s for s in graph.of_type(SUBNET) if f"-{tier}-" in s.name]


def route_table_of(graph: Graph, subnet) -> str:
    (assoc,) = [a for a in graph.of_type(ASSOCIATION) if a.get("subnetId") == subnet.id]
    return assoc.get("routeTableId")


def default_route(graph: Graph, route_table_id: str):
    routes = [r for r in graph.of_type(ROUTE) if r.get("routeTableId") == route_table_id]
    return [r for r in routes if r.get("destinationCidrBlock") == "0.0.0.0/0"]


def test_the_vpc_has_dns_and_the_configured_cidr(graph):
    vpc = graph.one("aws:ec2/vpc:Vpc")
    assert vpc.get("cidrBlock") == "10.0.0.0/16"
    assert vpc.get("enableDnsSupport") is True
    assert vpc.get("enableDnsHostnames") is True


def test_each_az_has_a_public_a_private_and_a_database_subnet(graph):
    zones = graph.outputs["availabilityZones"]
    assert len(zones) == 3
    for tier in ("public", "private", "database"):
        assert sorted(s.get("availabilityZone") for s in subnets(graph, tier)) == zones


def test_subnets_lie_inside_the_vpc_and_never_overlap(graph):
    vpc = ipaddress.ip_network(graph.one("aws:ec2/vpc:Vpc").get("cidrBlock"))
    nets = [ipaddress.ip_network(s.get("cidrBlock")) for s in graph.of_type(SUBNET)]
    assert len(nets) == 9
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(nets, 2))


@pytest.mark.parametrize(
    ("cidr", "zones"), [("10.0.0.0/16", 6), ("172.16.0.0/20", 6), ("192.168.0.0/18", 2)]
)
def test_the_layout_fits_any_allowed_vpc_and_az_count(cidr, zones):
    names = [f"us-east-1{c}" for c in "abcdef"[:zones]]
    plans = plan_subnets(cidr, names)
    nets = [ipaddress.ip_network(c) for p in plans for c in (p.public, p.private, p.database)]
    assert all(n.subnet_of(ipaddress.ip_network(cidr)) for n in nets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(nets, 2))
    # AWS's smallest subnet is /28; an ALB needs at least a /27 with 8 free addresses.
    assert max(n.prefixlen for n in nets) <= 26


def test_private_subnets_are_the_large_ones_for_pod_ips(prod):
    private = [ipaddress.ip_network(s.get("cidrBlock")) for s in subnets(prod, "private")]
    public = [ipaddress.ip_network(s.get("cidrBlock")) for s in subnets(prod, "public")]
    assert min(n.num_addresses for n in private) == 8192
    assert max(n.num_addresses for n in public) == 1024


def test_no_subnet_gives_instances_public_addresses(graph):
    assert all(s.get("mapPublicIpOnLaunch") is False for s in graph.of_type(SUBNET))


def test_load_balancer_controller_finds_subnets_by_role_tags(graph):
    for subnet in subnets(graph, "public"):
        assert subnet.get("tags")["kubernetes.io/role/elb"] == "1"
    for subnet in subnets(graph, "private"):
        assert subnet.get("tags")["kubernetes.io/role/internal-elb"] == "1"
    for subnet in subnets(graph, "database"):
        assert not any(k.startswith("kubernetes.io/") for k in subnet.get("tags"))


@pytest.mark.parametrize(("stack", "nats"), [("dev", 1), ("staging", 3), ("prod", 3)])
def test_nat_gateways_single_in_dev_one_per_az_in_staging_and_prod(stack, nats):
    graph = graph_of(stack)
    assert len(graph.of_type(NAT)) == nats
    assert len(graph.of_type("aws:ec2/eip:Eip")) == nats
    public_ids = {s.id for s in subnets(graph, "public")}
    assert all(n.get("subnetId") in public_ids for n in graph.of_type(NAT))


def test_nat_gateways_follow_the_config_not_the_stack_name():
    assert len(run_program("prod", {"natGateways": "single"}).of_type(NAT)) == 1
    assert len(run_program("dev", {"natGateways": "per-az", "azCount": 2}).of_type(NAT)) == 2


def test_public_subnets_route_to_the_internet_gateway(graph):
    igw = graph.one("aws:ec2/internetGateway:InternetGateway")
    for subnet in subnets(graph, "public"):
        (route,) = default_route(graph, route_table_of(graph, subnet))
        assert route.get("gatewayId") == igw.id


def test_private_subnets_route_through_a_nat_in_their_own_az_when_per_az(prod):
    nat_subnet = {n.id: n.get("subnetId") for n in prod.of_type(NAT)}
    az_of = {s.id: s.get("availabilityZone") for s in prod.of_type(SUBNET)}
    for subnet in subnets(prod, "private"):
        (route,) = default_route(prod, route_table_of(prod, subnet))
        assert az_of[nat_subnet[route.get("natGatewayId")]] == subnet.get("availabilityZone")


def test_private_subnets_share_the_single_nat_in_dev(dev):
    (nat,) = dev.of_type(NAT)
    for subnet in subnets(dev, "private"):
        (route,) = default_route(dev, route_table_of(dev, subnet))
        assert route.get("natGatewayId") == nat.id


def test_database_subnets_have_no_route_out_of_the_vpc(graph):
    tables = {route_table_of(graph, s) for s in subnets(graph, "database")}
    assert len(tables) == 1
    (table,) = tables
    assert [r for r in graph.of_type(ROUTE) if r.get("routeTableId") == table] == []
    (rt,) = [t for t in graph.of_type(ROUTE_TABLE) if t.id == table]
    assert rt.get("routes", []) == []


def test_the_default_security_group_is_emptied(graph):
    default_sg = graph.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.get("ingress", []) == []
    assert default_sg.get("egress", []) == []


@pytest.mark.parametrize("stack", STACKS)
def test_flow_logs_follow_the_environment(stack):
    graph = graph_of(stack)
    enabled = KEYS_BY_NAME["flowLogs"].default(stack)
    assert len(graph.of_type("aws:ec2/flowLog:FlowLog")) == (1 if enabled else 0)


def test_prod_flow_logs_capture_all_vpc_traffic_into_retained_logs(prod):
    flow_log = prod.one("aws:ec2/flowLog:FlowLog")
    log_group = prod.one("aws:cloudwatch/logGroup:LogGroup", "flow-logs")
    assert flow_log.get("vpcId") == prod.one("aws:ec2/vpc:Vpc").id
    assert flow_log.get("trafficType") == "ALL"
    assert flow_log.get("logDestinationType") == "cloud-watch-logs"
    assert flow_log.get("logDestination") == log_group.outputs["arn"]
    assert log_group.get("retentionInDays") == 90


def test_flow_log_role_is_scoped_to_this_account_and_its_log_group(prod):
    role = prod.one("aws:iam/role:Role", name_contains="flow-logs")
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    policy = prod.one("aws:iam/rolePolicy:RolePolicy", name_contains="flow-logs")
    (allow,) = json.loads(policy.get("policy"))["Statement"]
    log_group_arn = prod.one("aws:cloudwatch/logGroup:LogGroup", "flow-logs").outputs["arn"]
    assert allow["Resource"] == [log_group_arn, f"{log_group_arn}:*"]
    assert "*" not in allow["Action"]


def test_more_azs_give_more_subnets_and_nats():
    graph = run_program("prod", {"azCount": 4})
    assert len(graph.of_type(SUBNET)) == 12
    assert len(graph.of_type(NAT)) == 4
