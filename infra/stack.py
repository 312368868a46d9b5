"""The program: reads the config, composes the components, returns the stack outputs.

`compose()` returns every component in a `Platform`, so the next pieces (cluster, workload)
extend it by adding a component and passing it what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.cache import Cache, CacheArgs
from infra.config import NAMESPACE, ConfigError, StackConfig, load_config
from infra.database import Database, DatabaseArgs
from infra.loadbalancer import LoadBalancer, LoadBalancerArgs
from infra.naming import NAME_RULES, physical_name
from infra.network import Network, NetworkArgs
from infra.tags import default_tags


@dataclass(frozen=True)
class Platform:
    """Every component of the stack, for composition and outputs."""

    config: StackConfig
    provider: aws.Provider
    availability_zones: list[str]
    network: Network
    database: Database
    cache: Cache
    load_balancer: LoadBalancer


def aws_provider(cfg: StackConfig) -> aws.Provider:
    """The one AWS provider every AWS resource and invoke uses (default providers are off)."""
    return aws.Provider(
        "aws",
        region=cfg.region,
        default_tags=aws.ProviderDefaultTagsArgs(
            tags=default_tags(cfg.project, cfg.stack, cfg.environment)
        ),
    )


def availability_zones(cfg: StackConfig, provider: aws.Provider) -> list[str]:
    """The first `azCount` zones of the region (Local and Wavelength Zones excluded)."""
    zones = aws.get_availability_zones(
        state="available",
        filters=[
            aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])
        ],
        opts=pulumi.InvokeOptions(provider=provider),
    ).names
    wanted = cfg.network.az_count
    if len(zones) < wanted:
        raise ConfigError(
            f"{NAMESPACE}:azCount: {wanted} is not valid; allowed: at most {len(zones)} "
            f"in {cfg.region} ({', '.join(zones)})"
        )
    return sorted(zones)[:wanted]


def compose(cfg: StackConfig) -> Platform:
    """Create every component of the stack."""
    provider = aws_provider(cfg)
    opts = pulumi.ResourceOptions(provider=provider)
    zones = availability_zones(cfg, provider)
    identity = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider))

    network = Network(
        "network",
        NetworkArgs(
            name_prefix=cfg.name_prefix,
            vpc_cidr=cfg.network.vpc_cidr,
            availability_zones=zones,
            nat_gateways=cfg.network.nat_gateways,
            flow_logs=cfg.network.flow_logs,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
            account_id=identity.account_id,
            partition=cfg.partition,
            region=cfg.region,
        ),
        opts,
    )
    # The data stores admit the workload security group, which the cluster attaches to its
    # nodes; nothing else, and never an address range.
    clients = [network.workload_security_group_id]
    database = Database(
        "database",
        DatabaseArgs(
            identifier=physical_name(
                cfg.name_prefix, limit=NAME_RULES["aws:rds/instance:Instance"].limit
            ),
            vpc_id=network.vpc_id,
            subnet_ids=network.database_subnet_ids,
            allowed_security_group_ids=clients,
            engine_version=cfg.database.engine_version,
            instance_class=cfg.database.instance_class,
            allocated_storage=cfg.database.allocated_storage,
            max_allocated_storage=cfg.database.max_allocated_storage,
            multi_az=cfg.database.multi_az,
            backup_retention_days=cfg.database.backup_retention_days,
            backup_window=cfg.database.backup_window,
            maintenance_window=cfg.database.maintenance_window,
            performance_insights=cfg.database.performance_insights,
            deletion_protection=cfg.deletion_protection,
            final_snapshot=cfg.database.final_snapshot,
        ),
        opts,
    )
    cache = Cache(
        "cache",
        CacheArgs(
            replication_group_id=physical_name(
                cfg.name_prefix,
                limit=NAME_RULES["aws:elasticache/replicationGroup:ReplicationGroup"].limit,
            ),
            vpc_id=network.vpc_id,
            subnet_ids=network.database_subnet_ids,
            allowed_security_group_ids=clients,
            engine=cfg.cache.engine,
            engine_version=cfg.cache.engine_version,
            node_type=cfg.cache.node_type,
            nodes=cfg.cache.nodes,
            snapshot_retention_days=cfg.cache.snapshot_retention_days,
        ),
        opts,
    )
    load_balancer = LoadBalancer(
        "ingress",
        LoadBalancerArgs(
            name_prefix=cfg.name_prefix,
            vpc_id=network.vpc_id,
            subnet_ids=network.public_subnet_ids,
            ingress_cidrs=cfg.load_balancer.ingress_cidrs,
            target_security_group_id=network.workload_security_group_id,
            certificate_arn=cfg.load_balancer.certificate_arn,
            waf_rate_limit=cfg.load_balancer.waf_rate_limit,
            deletion_protection=cfg.deletion_protection,
        ),
        opts,
    )
    return Platform(cfg, provider, zones, network, database, cache, load_balancer)


def outputs(platform: Platform) -> dict[str, Any]:
    """Stack outputs (camelCase, as `pulumi stack output` shows them)."""
    p = platform
    return {
        "availabilityZones": p.availability_zones,
        "vpcId": p.network.vpc_id,
        "publicSubnetIds": p.network.public_subnet_ids,
        "privateSubnetIds": p.network.private_subnet_ids,
        "databaseSubnetIds": p.network.database_subnet_ids,
        "workloadSecurityGroupId": p.network.workload_security_group_id,
        "albDnsName": p.load_balancer.dns_name,
        "albUrl": p.load_balancer.url,
        "targetGroupArn": p.load_balancer.target_group_arn,
        "dbEndpoint": p.database.endpoint,
        "dbAddress": p.database.address,
        "dbPort": p.database.port,
        "dbName": p.database.db_name,
        "dbSecretArn": p.database.secret_arn,
        "redisPrimaryEndpoint": p.cache.primary_endpoint,
        "redisPort": p.cache.port,
        "redisAuthToken": p.cache.auth_token,
    }


def build(cfg: StackConfig | None = None) -> dict[str, Any]:
    """The whole program: validated config first, then resources; returns the outputs."""
    return outputs(compose(cfg or load_config()))
