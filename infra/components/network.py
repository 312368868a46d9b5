"""Network component: VPC with public, private and isolated database subnets per AZ.

Layout of a VPC of prefix /p (see `plan_subnets`): the first six /(p+3) blocks are the private
subnets (the large ones: EKS pods take their IPs from them), the seventh /(p+3) holds the public
/(p+6) subnets and the eighth the database /(p+6) subnets. A /16 gives /19 private and /22 public
and database subnets; a /20 still gives /26 (59 usable addresses, enough for an ALB).

Public subnets route to the internet gateway, private subnets to a NAT gateway (one shared or one
per AZ), database subnets nowhere outside the VPC.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import NetworkConfig
from infra.tags import name_tag

MAX_AZS = 6  # the private /(p+3) blocks 0..5; blocks 6 and 7 hold public and database subnets
ELB_ROLE_TAG = {"kubernetes.io/role/elb": "1"}
INTERNAL_ELB_ROLE_TAG = {"kubernetes.io/role/internal-elb": "1"}


@dataclass(frozen=True)
class SubnetPlan:
    """The three subnets of one availability zone."""

    zone: str
    public: str
    private: str
    database: str


def plan_subnets(vpc_cidr: str, zones: Sequence[str]) -> list[SubnetPlan]:
    """Non-overlapping public, private and database CIDRs inside `vpc_cidr`, one set per zone."""
    if not 1 <= len(zones) <= MAX_AZS:
        raise ValueError(f"between 1 and {MAX_AZS} zones are supported, got {len(zones)}")
    vpc = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(vpc.subnets(prefixlen_diff=3))
    public = list(blocks[6].subnets(prefixlen_diff=3))
    database = list(blocks[7].subnets(prefixlen_diff=3))
    return [
        SubnetPlan(zone, str(public[i]), str(blocks[i]), str(database[i]))
        for i, zone in enumerate(zones)
    ]


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of the Network component."""

    settings: NetworkConfig  # the stack's network keys
    name_prefix: str  # `<project>-<stack>`, for Name tags
    availability_zones: Sequence[str]
    account_id: str
    partition: str
    region: str
    log_kms_key_arn: pulumi.Input[str] | None = None  # encrypts the flow-log group


class Network(pulumi.ComponentResource):
    """VPC, subnets, gateways and routes; the workload security group other components trust."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    database_subnet_ids: list[pulumi.Output[str]]
    public_subnet_cidrs: list[str]  # where the ALB's nodes are: the API admits only them
    private_subnet_cidrs: list[str]  # nodes, pods and the metrics scraper
    database_subnet_cidrs: list[str]  # for NetworkPolicies towards the data stores
    workload_security_group_id: pulumi.Output[str]
    nat_gateway_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        plans = plan_subnets(args.settings.vpc_cidr, args.availability_zones)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.settings.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=name_tag(prefix, "vpc"),
            opts=child,
        )
        # The default security group allows all traffic between its members: empty it, so
        # nothing that lands in it by accident is reachable.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=name_tag(prefix, "default-locked"),
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=name_tag(prefix, "igw"), opts=child
        )

        # Per AZ one subnet per tier; the role tags tell the load balancer controller where
        # internet-facing and internal load balancers go. The database tier has neither.
        tiers = {"public": ELB_ROLE_TAG, "private": INTERNAL_ELB_ROLE_TAG, "database": {}}
        subnets: dict[str, list[aws.ec2.Subnet]] = {tier: [] for tier in tiers}
        for plan in plans:
            az = _zone_suffix(plan.zone, args.region)
            for tier, role_tag in tiers.items():
                subnets[tier].append(
                    aws.ec2.Subnet(
                        f"{name}-{tier}-{az}",
                        vpc_id=vpc.id,
                        cidr_block=getattr(plan, tier),
                        availability_zone=plan.zone,
                        map_public_ip_on_launch=False,
                        tags={**name_tag(prefix, tier, az), **role_tag},
                        opts=child,
                    )
                )
        public, private, database = subnets["public"], subnets["private"], subnets["database"]

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, tags=name_tag(prefix, "public"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        nat_count = len(plans) if args.settings.nat_gateways == "per-az" else 1
        nats = []
        for i in range(nat_count):
            az = _zone_suffix(plans[i].zone, args.region)
            eip = aws.ec2.Eip(
                f"{name}-nat-{az}-eip", domain="vpc", tags=name_tag(prefix, "nat", az), opts=child
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{az}",
                    allocation_id=eip.id,
                    subnet_id=public[i].id,
                    connectivity_type="public",
                    tags=name_tag(prefix, "nat", az),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )

        database_rt = aws.ec2.RouteTable(
            f"{name}-database-rt", vpc_id=vpc.id, tags=name_tag(prefix, "database"), opts=child
        )
        for i, plan in enumerate(plans):
            az = _zone_suffix(plan.zone, args.region)
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}-assoc",
                subnet_id=public[i].id,
                route_table_id=public_rt.id,
                opts=child,
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{az}-rt",
                vpc_id=vpc.id,
                tags=name_tag(prefix, "private", az),
                opts=child,
            )
            aws.ec2.Route(
                f"{name}-private-{az}-default",
                route_table_id=private_rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[i if nat_count > 1 else 0].id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}-assoc",
                subnet_id=private[i].id,
                route_table_id=private_rt.id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-database-{az}-assoc",
                subnet_id=database[i].id,
                route_table_id=database_rt.id,
                opts=child,
            )

        workload_sg = aws.ec2.SecurityGroup(
            f"{name}-workload-sg",
            vpc_id=vpc.id,
            description="Workloads (EKS nodes and pods); the database and cache admit it",
            tags=name_tag(prefix, "workload"),
            opts=child,
        )

        if args.settings.flow_logs:
            self._flow_logs(name, args, vpc, child)

        self.vpc_id = vpc.id
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.database_subnet_ids = [s.id for s in database]
        self.public_subnet_cidrs = [plan.public for plan in plans]
        self.private_subnet_cidrs = [plan.private for plan in plans]
        self.database_subnet_cidrs = [plan.database for plan in plans]
        self.workload_security_group_id = workload_sg.id
        self.nat_gateway_ids = [nat.id for nat in nats]
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "databaseSubnetIds": self.database_subnet_ids,
                "workloadSecurityGroupId": self.workload_security_group_id,
            }
        )

    def _flow_logs(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, child: pulumi.ResourceOptions
    ) -> None:
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=args.settings.flow_log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child,
        )
        # Only this account's flow-log service may assume the role (confused-deputy guard).
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": args.account_id},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:{args.partition}:ec2:{args.region}:"
                            f"{args.account_id}:vpc-flow-log/*"
                        },
                    },
                }
            ],
        }
        role = aws.iam.Role(
            f"{name}-flow-logs-role", assume_role_policy=json.dumps(trust), opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "logs:CreateLogStream",
                                    "logs:PutLogEvents",
                                    "logs:DescribeLogStreams",
                                ],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=name_tag(args.name_prefix, "flow-log"),
            opts=child,
        )


def _zone_suffix(zone: str, region: str) -> str:
    """`a` for us-east-1a: short, stable logical names per AZ."""
    suffix = zone.removeprefix(region)
    return suffix if suffix.isalnum() else zone
