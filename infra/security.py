"""Security group rules, one resource per rule (aws.vpc.SecurityGroup{Ingress,Egress}Rule).

A group created by `aws.ec2.SecurityGroup` without inline rules has no ingress and - because the
provider removes AWS's default allow-all egress - no egress: every path is opened here, by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws


def allow_tcp_from_groups(
    name: str,
    security_group_id: pulumi.Input[str],
    source_group_ids: Sequence[pulumi.Input[str]],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """Ingress on `port` from each source security group (never from an address range)."""
    return [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-{i}",
            security_group_id=security_group_id,
            referenced_security_group_id=source,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=opts,
        )
        for i, source in enumerate(source_group_ids)
    ]


def allow_tcp_from_cidrs(
    name: str,
    security_group_id: pulumi.Input[str],
    cidrs: Sequence[str],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """Ingress on `port` from each IPv4 range."""
    return [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-{i}",
            security_group_id=security_group_id,
            cidr_ipv4=cidr,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=opts,
        )
        for i, cidr in enumerate(cidrs)
    ]
