"""Security group rules, one resource per rule (aws.vpc.SecurityGroup{Ingress,Egress}Rule).

A group created by `aws.ec2.SecurityGroup` without inline rules has no ingress and - because the
provider removes AWS's default allow-all egress - no egress: every path is opened here, by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws


def _allow_tcp(
    name: str,
    security_group_id: pulumi.Input[str],
    sources: Sequence[Mapping[str, pulumi.Input[str]]],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """One ingress rule on `port` per source (a security group or an address range)."""
    return [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-{i}",
            security_group_id=security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=opts,
            **source,
        )
        for i, source in enumerate(sources)
    ]


def allow_tcp_from_groups(
    name: str,
    security_group_id: pulumi.Input[str],
    source_group_ids: Sequence[pulumi.Input[str]],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """Ingress on `port` from each source security group (never from an address range)."""
    sources = [{"referenced_security_group_id": group} for group in source_group_ids]
    return _allow_tcp(name, security_group_id, sources, port, description, opts)


def allow_tcp_from_cidrs(
    name: str,
    security_group_id: pulumi.Input[str],
    cidrs: Sequence[str],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """Ingress on `port` from each IPv4 range."""
    return _allow_tcp(
        name, security_group_id, [{"cidr_ipv4": c} for c in cidrs], port, description, opts
    )


def data_store_security_group(
    name: str,
    *,
    vpc_id: pulumi.Input[str],
    store: str,
    protocol: str,
    port: int,
    client_group_ids: Sequence[pulumi.Input[str]],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """A data store's group: `port` open to the client security groups only, nothing else."""
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=vpc_id,
        description=f"{store}: {port} from the workload security groups only",
        tags=tags,
        opts=opts,
    )
    allow_tcp_from_groups(
        f"{name}-from-clients",
        group.id,
        client_group_ids,
        port,
        f"{protocol} from a client security group",
        opts,
    )
    return group
