"""Nothing reachable from the internet except the load balancer's listener ports."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import UNKNOWN, dependencies, get, is_true, items, number

OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
ALB_OPEN_PORTS = frozenset({80, 443})

SUBNET = "aws:ec2/subnet:Subnet"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"

# Data store -> (its subnet group property, the subnet group type).
DATA_STORES = {
    "aws:rds/instance:Instance": ("dbSubnetGroupName", "aws:rds/subnetGroup:SubnetGroup"),
    "aws:rds/cluster:Cluster": ("dbSubnetGroupName", "aws:rds/subnetGroup:SubnetGroup"),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "subnetGroupName",
        "aws:elasticache/subnetGroup:SubnetGroup",
    ),
}


def _internet_routed_tables(resources) -> set[str]:
    """URNs of route tables with a route to an internet gateway."""
    routed = set()
    for r in resources:
        if r.resource_type == ROUTE and dependencies(r, "gatewayId", INTERNET_GATEWAY):
            routed |= {t.urn for t in dependencies(r, "routeTableId", ROUTE_TABLE)}
        if r.resource_type == ROUTE_TABLE and dependencies(r, "routes", INTERNET_GATEWAY):
            routed.add(r.urn)
    return routed


def _public_subnets(resources) -> set[str]:
    """URNs of subnets that give their instances a path from the internet."""
    routed = _internet_routed_tables(resources)
    public = {
        r.urn
        for r in resources
        if r.resource_type == SUBNET and is_true(get(r.props, "mapPublicIpOnLaunch"))
    }
    for r in resources:
        if r.resource_type == ROUTE_TABLE_ASSOCIATION and any(
            t.urn in routed for t in dependencies(r, "routeTableId", ROUTE_TABLE)
        ):
            public |= {s.urn for s in dependencies(r, "subnetId", SUBNET)}
    return public


def _data_stores(args: StackValidationArgs, report: ReportViolation) -> None:
    public_subnets = _public_subnets(args.resources)
    for store in args.resources:
        if store.resource_type not in DATA_STORES:
            continue
        if is_true(get(store.props, "publiclyAccessible")):
            report(
                f"{store.name!r} is publicly accessible: set publiclyAccessible=false.", store.urn
            )
        prop, group_type = DATA_STORES[store.resource_type]
        groups = dependencies(store, prop, group_type)
        name = get(store.props, prop)
        if not groups and not name:
            report(
                f"{store.name!r} has no subnet group, so it lands in the default VPC: "
                f"set {prop} to a subnet group of private subnets.",
                store.urn,
            )
        for group in groups:
            exposed = [s.name for s in dependencies(group, "subnetIds") if s.urn in public_subnets]
            if exposed:
                report(
                    f"{store.name!r} uses subnet group {group.name!r} with public subnets "
                    f"{sorted(exposed)} (routed to an internet gateway): use isolated subnets.",
                    store.urn,
                )


def _alb_security_groups(resources) -> set[str]:
    groups = set()
    for lb in resources:
        if lb.resource_type == LOAD_BALANCER and get(
            lb.props, "loadBalancerType", default="application"
        ) in ("application", UNKNOWN):
            groups |= {g.urn for g in dependencies(lb, "securityGroups")}
    return groups


def _ingress_rules(resources):
    """(security group URN or None, rule resource, rule props) for every ingress rule."""
    for r in resources:
        legacy_ingress = r.resource_type == LEGACY_RULE and get(r.props, "type") == "ingress"
        if r.resource_type == INGRESS_RULE or legacy_ingress:
            for group in dependencies(r, "securityGroupId") or [None]:
                yield (group.urn if group else None), r, r.props
        elif r.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
            for rule in items(get(r.props, "ingress", default=[])):
                yield r.urn, r, rule


def _open_cidrs(rule) -> list[str]:
    cidrs = [get(rule, "cidrIpv4"), get(rule, "cidrIpv6")]
    cidrs += items(get(rule, "cidrBlocks", default=[]))
    cidrs += items(get(rule, "ipv6CidrBlocks", default=[]))
    return [c for c in cidrs if c in OPEN_CIDRS]


def _ports(rule) -> tuple[int | None, int | None, str]:
    protocol = str(get(rule, "ipProtocol", default=get(rule, "protocol", default="")))
    low, high = number(get(rule, "fromPort")), number(get(rule, "toPort"))
    return (
        None if low is None else int(low),
        None if high is None else int(high),
        protocol,
    )


def _open_ingress(args: StackValidationArgs, report: ReportViolation) -> None:
    alb_groups = _alb_security_groups(args.resources)
    for group_urn, resource, rule in _ingress_rules(args.resources):
        open_cidrs = _open_cidrs(rule)
        if not open_cidrs:
            continue
        low, high, protocol = _ports(rule)
        alb_port = (
            group_urn in alb_groups
            and protocol.lower() in ("tcp", "6")
            and low == high
            and low in ALB_OPEN_PORTS
        )
        if not alb_port:
            ports = "all ports" if protocol in ("-1", "all") else f"{protocol} {low}-{high}"
            report(
                f"{resource.name!r} admits {', '.join(open_cidrs)} on {ports}: only the "
                "application load balancer's security group may, on 80 and 443.",
                resource.urn,
            )


NO_PUBLIC_DATA_STORES = StackValidationPolicy(
    name="no-public-data-stores",
    description="RDS and ElastiCache are not publicly accessible and live in subnets without a "
    "route from the internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_data_stores,
)
NO_OPEN_INGRESS = StackValidationPolicy(
    name="no-open-ingress",
    description="No security group admits 0.0.0.0/0 or ::/0, except the ALB's on ports 80/443.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_open_ingress,
)

POLICIES = [NO_PUBLIC_DATA_STORES, NO_OPEN_INGRESS]
