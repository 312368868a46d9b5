"""SharedNetwork component: an existing VPC (existing-VPC mode), as the stack's network.

The VPC, its subnets, gateways and routes belong to someone else (another stack, or the team
that runs the account's network); `infra.config.shared_vpc` has checked them at preview. This
stack only adds its own `workload` security group in that VPC, so stacks sharing the VPC never
admit each other's pods into their databases, caches or load balancers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.shared_vpc import SharedVpc
from infra.tags import name_tag


@dataclass(frozen=True)
class SharedNetworkArgs:
    """Inputs of the SharedNetwork component."""

    vpc: SharedVpc  # the checked subnets of the existing VPC
    name_prefix: str  # `<project>-<stack>`, for Name tags


class SharedNetwork(pulumi.ComponentResource):
    """The same outputs as `Network`, over a VPC this stack does not own."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    database_subnet_ids: list[pulumi.Output[str]]
    public_subnet_cidrs: list[str]  # where the ALB's nodes are: the API admits only them
    private_subnet_cidrs: list[str]  # nodes, pods and the metrics scraper
    database_subnet_cidrs: list[str]  # for NetworkPolicies towards the data stores
    workload_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SharedNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("agent-platform:infra:SharedNetwork", name, None, opts)
        vpc = args.vpc
        workload_sg = aws.ec2.SecurityGroup(
            f"{name}-workload-sg",
            vpc_id=vpc.vpc_id,
            description="Workloads (EKS nodes and pods); the database and cache admit it",
            tags=name_tag(args.name_prefix, "workload"),
            opts=pulumi.ResourceOptions(parent=self),
        )

        def ids(tier: str) -> list[pulumi.Output[str]]:
            return [pulumi.Output.from_input(s.id) for s in getattr(vpc, tier)]

        self.vpc_id = pulumi.Output.from_input(vpc.vpc_id)
        self.public_subnet_ids = ids("public")
        self.private_subnet_ids = ids("private")
        self.database_subnet_ids = ids("database")
        self.public_subnet_cidrs = [s.cidr for s in vpc.public]
        self.private_subnet_cidrs = [s.cidr for s in vpc.private]
        self.database_subnet_cidrs = [s.cidr for s in vpc.database]
        self.workload_security_group_id = workload_sg.id
        # The shared network's NAT gateways belong to whoever owns it: their alarms too.
        self.nat_gateway_ids: list[pulumi.Output[str]] = []
        self.register_outputs(
            {"vpcId": self.vpc_id, "workloadSecurityGroupId": self.workload_security_group_id}
        )
