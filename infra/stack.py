"""The program: reads the config, composes the components, returns the stack outputs.

`compose()` returns every component in a `Platform`: network, cluster, data stores, load
balancer, registry, cluster add-ons and the workload, each given what it needs by the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import autoscaling
from infra.components.addons import Addons, AddonsArgs
from infra.components.cache import Cache, CacheArgs
from infra.components.cluster import Cluster, ClusterArgs
from infra.components.database import Database, DatabaseArgs
from infra.components.loadbalancer import LoadBalancer, LoadBalancerArgs
from infra.components.network import Network, NetworkArgs
from infra.components.observability import (
    AlarmTargets,
    Monitoring,
    MonitoringArgs,
    ScraperNetwork,
    Sinks,
    SinksArgs,
)
from infra.components.observability.buckets import ALB_LOG_PREFIX
from infra.components.registry import Registry, RegistryArgs, content_tag
from infra.components.shared_network import SharedNetwork, SharedNetworkArgs
from infra.components.workload import Workload, WorkloadArgs
from infra.config import (
    NAMESPACE,
    ConfigError,
    StackConfig,
    checks,
    kubernetes,
    load_config,
    shared_vpc,
)
from infra.config.shared_vpc import SharedVpc
from infra.naming import NAME_RULES, physical_name
from infra.nodes import node_autoscaling
from infra.outputs import outputs
from infra.tags import default_tags

PROJECT_DIR = Path(__file__).resolve().parents[1]
BUILD_CONTEXT = "service"  # relative to the project: `pulumi up` runs there


@dataclass(frozen=True)
class Platform:
    """Every component of the stack, for composition and outputs."""

    config: StackConfig
    provider: aws.Provider
    availability_zones: list[str]
    network: Network | SharedNetwork
    cluster: Cluster
    database: Database
    cache: Cache
    load_balancer: LoadBalancer
    registry: Registry
    addons: Addons
    workload: Workload
    image: pulumi.Output[str]
    sinks: Sinks
    monitoring: Monitoring


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
    """The first `azCount` zones of the region that EKS supports, by name.

    Zones are excluded by zone ID: EKS cannot place a cluster in a few zones (use1-az3 in
    us-east-1, ...), and which name (us-east-1a, -b, ...) such a zone has differs per account.
    Local and Wavelength Zones are excluded too.
    """
    zones = aws.get_availability_zones(
        state="available",
        exclude_zone_ids=list(checks.EKS_UNSUPPORTED_ZONE_IDS),
        filters=[
            aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])
        ],
        opts=pulumi.InvokeOptions(provider=provider),
    ).names
    wanted = cfg.network.az_count
    if len(zones) < wanted:
        raise ConfigError(
            f"{NAMESPACE}:azCount: {wanted} is not valid; allowed: at most {len(zones)} "
            f"in {cfg.region} (the zones EKS supports: {', '.join(zones)})"
        )
    return sorted(zones)[:wanted]


def network_of(
    cfg: StackConfig,
    provider: aws.Provider,
    placement: SharedVpc | list[str],
    account_id: str,
    log_kms_key_arn: pulumi.Input[str],
) -> Network | SharedNetwork:
    """The stack's own VPC in the zones of `placement`, or the existing VPC it describes."""
    opts = pulumi.ResourceOptions(provider=provider)
    if isinstance(placement, SharedVpc):
        return SharedNetwork(
            "network", SharedNetworkArgs(vpc=placement, name_prefix=cfg.name_prefix), opts
        )
    return Network(
        "network",
        NetworkArgs(
            settings=cfg.network,
            name_prefix=cfg.name_prefix,
            availability_zones=placement,
            account_id=account_id,
            partition=cfg.partition,
            region=cfg.region,
            log_kms_key_arn=log_kms_key_arn,
        ),
        opts,
    )


def placement_of(cfg: StackConfig, provider: aws.Provider) -> SharedVpc | list[str]:
    """Where the stack goes, looked up and checked before any resource exists (ConfigError):
    the existing VPC of existing-VPC mode, or the zones of the stack's own VPC."""
    if cfg.network.existing_vpc:
        return shared_vpc.look_up(cfg.network, cfg.region, provider)
    return availability_zones(cfg, provider)


def compose(cfg: StackConfig) -> Platform:
    """Create every component of the stack."""
    notice = kubernetes.extended_support_notice(
        cfg.cluster.kubernetes_version, cfg.cluster.upgrade_policy, cfg.today
    )
    if notice:
        pulumi.log.warn(notice)
    provider = aws_provider(cfg)
    opts = pulumi.ResourceOptions(provider=provider)
    identity = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider))
    placement = placement_of(cfg, provider)
    zones = placement.zones if isinstance(placement, SharedVpc) else placement
    cluster_name = physical_name(cfg.name_prefix, limit=NAME_RULES["eks:index:Cluster"].limit)

    # Where telemetry lands exists before what sends it (log groups, buckets, key, role).
    sinks = Sinks(
        "sinks",
        SinksArgs(
            settings=cfg.operations,
            name_prefix=cfg.name_prefix,
            cluster_name=cluster_name,
            account_id=identity.account_id,
            region=cfg.region,
            partition=cfg.partition,
            force_destroy=not cfg.deletion_protection,
            key_deletion_days=30 if cfg.deletion_protection else 7,
        ),
        opts,
    )
    network = network_of(cfg, provider, placement, identity.account_id, sinks.log_key_arn)
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            name=cluster_name,
            settings=cfg.cluster,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            workload_security_group_id=network.workload_security_group_id,
            deletion_protection=cfg.deletion_protection,
            partition=cfg.partition,
            log_kms_key_arn=sinks.log_key_arn,
        ),
        pulumi.ResourceOptions(providers={"aws": provider}),
    )
    # The data stores admit the workload group every node (and pod) carries; never a CIDR.
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
            settings=cfg.database,
            deletion_protection=cfg.deletion_protection,
            monitoring_interval=cfg.operations.db_monitoring_interval,
            monitoring_role_arn=sinks.monitoring_role_arn,
            log_kms_key_arn=sinks.log_key_arn,
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
            settings=cfg.cache,
        ),
        opts,
    )
    load_balancer = LoadBalancer(
        "ingress",
        LoadBalancerArgs(
            name_prefix=cfg.name_prefix,
            vpc_id=network.vpc_id,
            subnet_ids=network.public_subnet_ids,
            settings=cfg.load_balancer,
            target_security_group_id=network.workload_security_group_id,
            deletion_protection=cfg.deletion_protection,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=sinks.access_log_bucket, prefix=ALB_LOG_PREFIX, enabled=True
            ),
        ),
        opts,
    )
    registry = Registry(
        "registry",
        RegistryArgs(
            repository_name=physical_name(
                cfg.name_prefix,
                "agent-service",
                limit=NAME_RULES["aws:ecr/repository:Repository"].limit,
            ),
            settings=cfg.registry,
            force_delete=not cfg.deletion_protection,
            build_context=BUILD_CONTEXT if cfg.registry.build_image else None,
        ),
        opts,
    )
    if registry.image_ref is not None:
        image: pulumi.Output[str] = registry.image_ref
        image_version = content_tag(PROJECT_DIR / BUILD_CONTEXT)
    else:
        prebuilt = cfg.registry.image or ""
        image = pulumi.Output.from_input(prebuilt)
        image_version = label_value(checks.image_tag(prebuilt) or prebuilt.rsplit(":", 1)[-1])

    both = pulumi.ResourceOptions(providers={"aws": provider, "kubernetes": cluster.provider})
    nodes = node_autoscaling(cfg, cluster, network, identity.account_id, both)
    addons = Addons(
        "addons",
        AddonsArgs(
            cluster_name=cluster.name,
            kubernetes_version=cfg.cluster.kubernetes_version,
            region=cfg.region,
            vpc_id=network.vpc_id,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            cluster_ready=nodes.ready,
            cluster_autoscaler=nodes.cluster_autoscaler,
        ),
        both,
    )
    workload = Workload(
        "workload",
        WorkloadArgs(
            settings=cfg.workload,
            kubernetes_version=cfg.cluster.kubernetes_version,
            image=image,
            image_version=image_version,
            region=cfg.region,
            account_id=identity.account_id,
            partition=cfg.partition,
            http_keepalive_timeout_seconds=cfg.load_balancer.keepalive_timeout_seconds,
            load_balancer_subnet_cidrs=network.public_subnet_cidrs,
            scraper_subnet_cidrs=network.private_subnet_cidrs,
            database_subnet_cidrs=network.database_subnet_cidrs,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            db_secret_arn=database.secret_arn,
            db_host=database.address,
            db_port=database.port,
            db_name=database.db_name,
            redis_host=cache.primary_endpoint,
            redis_port=cache.port,
            redis_auth_token=cache.auth_token,
            api_keys=cfg.secrets.api_keys,
            model_api_key=cfg.secrets.model_api_key,
            target_group_arn=load_balancer.target_group_arn,
            cluster_ready=nodes.ready,
            load_balancer_controller=addons.load_balancer_controller,
        ),
        both,
    )
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            settings=cfg.operations,
            name_prefix=cfg.name_prefix,
            account_id=identity.account_id,
            region=cfg.region,
            partition=cfg.partition,
            sinks=sinks,
            cluster_name=cluster.name,
            namespace=workload.namespace,
            network=ScraperNetwork(
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                workload_security_group_id=network.workload_security_group_id,
                cluster_security_group_id=cluster.node_security_group_id,
            ),
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            cluster_ready=nodes.ready,
            alarm_targets=AlarmTargets(
                load_balancer=load_balancer.arn_suffix,
                target_group=load_balancer.target_group_arn_suffix,
                db_instance=database.identifier,
                cache_group=cache.replication_group_id,
                cache_nodes=cfg.cache.nodes,
                nat_gateways=network.nat_gateway_ids,
            ),
            web_acl_arn=load_balancer.web_acl_arn,
            web_acl_name=load_balancer.web_acl_name,
        ),
        both,
    )
    autoscaling.wire(cfg, cluster, cache, workload, monitoring, both)
    return Platform(
        cfg, provider, zones, network, cluster, database, cache, load_balancer, registry,
        addons, workload, image, sinks, monitoring,
    )  # fmt: skip


def label_value(text: str) -> str:
    """`text` as a Kubernetes label value (63 characters of [A-Za-z0-9_.-], alphanumeric ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned) or "unknown"


def build(cfg: StackConfig | None = None, today: date | None = None) -> dict[str, Any]:
    """The whole program: validated config first, then resources; returns the outputs.

    `today` (default: the UTC date) is the day the EKS support calendar is checked against.
    """
    return outputs(compose(cfg or load_config(today)))
