"""The program: reads the config, composes the components, returns the stack outputs.

`compose()` returns every component in a `Platform`: network, cluster, data stores, load
balancer, registry, cluster add-ons and the workload, each given what it needs by the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.addons import Addons, AddonsArgs
from infra.components.cache import Cache, CacheArgs
from infra.components.cluster import Cluster, ClusterArgs
from infra.components.database import Database, DatabaseArgs
from infra.components.loadbalancer import LoadBalancer, LoadBalancerArgs
from infra.components.network import Network, NetworkArgs
from infra.components.registry import Registry, RegistryArgs, content_tag
from infra.components.workload import Scaling, Workload, WorkloadArgs
from infra.components.workload.pods import Resources
from infra.config import NAMESPACE, ConfigError, StackConfig, checks, load_config
from infra.naming import NAME_RULES, physical_name
from infra.tags import default_tags

PROJECT_DIR = Path(__file__).resolve().parents[1]
BUILD_CONTEXT = "service"  # relative to the project: `pulumi up` runs there


@dataclass(frozen=True)
class Platform:
    """Every component of the stack, for composition and outputs."""

    config: StackConfig
    provider: aws.Provider
    availability_zones: list[str]
    network: Network
    cluster: Cluster
    database: Database
    cache: Cache
    load_balancer: LoadBalancer
    registry: Registry
    addons: Addons
    workload: Workload
    image: pulumi.Output[str]


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
    cluster = Cluster(
        "cluster",
        ClusterArgs(
            name=physical_name(cfg.name_prefix, limit=NAME_RULES["eks:index:Cluster"].limit),
            kubernetes_version=cfg.cluster.kubernetes_version,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            workload_security_group_id=network.workload_security_group_id,
            public_access_cidrs=cfg.cluster.public_access_cidrs,
            admin_role_arns=cfg.cluster.admin_role_arns,
            node_instance_types=cfg.cluster.node_instance_types,
            node_capacity_type=cfg.cluster.node_capacity_type,
            node_min_size=cfg.cluster.node_min_size,
            node_desired_size=cfg.cluster.node_desired_size,
            node_max_size=cfg.cluster.node_max_size,
            log_retention_days=cfg.cluster.log_retention_days,
            deletion_protection=cfg.deletion_protection,
            partition=cfg.partition,
        ),
        pulumi.ResourceOptions(providers={"aws": provider}),
    )
    # The data stores admit the workload security group, which the cluster's launch template
    # attaches to every node (and so to every pod on the VPC CNI); nothing else, and never an
    # address range.
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
            certificate_arn=cfg.load_balancer.certificate_arn or None,
            waf_rate_limit=cfg.load_balancer.waf_rate_limit,
            deletion_protection=cfg.deletion_protection,
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
            keep_images=cfg.registry.keep_images,
            force_delete=not cfg.deletion_protection,
            build_context=BUILD_CONTEXT if cfg.registry.build_image else None,
            image_tag=content_tag(PROJECT_DIR / BUILD_CONTEXT)
            if cfg.registry.build_image
            else None,
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
    addons = Addons(
        "addons",
        AddonsArgs(
            cluster_name=cluster.name,
            kubernetes_version=cfg.cluster.kubernetes_version,
            region=cfg.region,
            vpc_id=network.vpc_id,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            cluster_ready=cluster.ready,
        ),
        both,
    )
    w = cfg.workload
    workload = Workload(
        "workload",
        WorkloadArgs(
            kubernetes_version=cfg.cluster.kubernetes_version,
            image=image,
            image_version=image_version,
            region=cfg.region,
            vpc_cidr=cfg.network.vpc_cidr,
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
            settings=service_settings(cfg),
            resources=Resources(w.cpu_request, w.memory_request, w.cpu_limit, w.memory_limit),
            api_scaling=Scaling(
                w.api_min_replicas, w.api_max_replicas, w.hpa_cpu_target, w.hpa_memory_target
            ),
            worker_scaling=Scaling(
                w.worker_min_replicas,
                w.worker_max_replicas,
                w.hpa_cpu_target,
                w.hpa_memory_target,
            ),
            target_group_arn=load_balancer.target_group_arn,
            cluster_ready=cluster.ready,
            load_balancer_controller=addons.load_balancer_controller,
        ),
        both,
    )
    return Platform(
        cfg, provider, zones, network, cluster, database, cache, load_balancer, registry,
        addons, workload, image,
    )  # fmt: skip


def service_settings(cfg: StackConfig) -> dict[str, str]:
    """The service's non-secret settings that come from the stack config."""
    w = cfg.workload
    settings = {
        "AGENT_TYPE": w.agent_type,
        "MAX_CONCURRENT_SESSIONS": str(w.max_concurrent_sessions),
        "MODEL_BACKEND": w.model_backend,
        "LOG_LEVEL": w.log_level,
    }
    if w.model_url:
        settings["MODEL_URL"] = w.model_url
    if w.model_id:
        settings["MODEL_ID"] = w.model_id
    return settings


def label_value(text: str) -> str:
    """`text` as a Kubernetes label value (63 characters of [A-Za-z0-9_.-], alphanumeric ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned) or "unknown"


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
        "region": p.config.region,
        "clusterName": p.cluster.name,
        "kubernetesVersion": p.config.cluster.kubernetes_version,
        "kubeconfig": p.cluster.kubeconfig,
        "oidcProviderArn": p.cluster.oidc_provider_arn,
        "nodeSecurityGroupId": p.cluster.node_security_group_id,
        "ecrRepositoryUrl": p.registry.repository_url,
        "image": p.image,
        "namespace": p.workload.namespace,
        "serviceUrl": p.load_balancer.url,
        "apiKeys": p.workload.api_keys,
        "dbInstanceIdentifier": p.database.identifier,
        "cacheReplicationGroupId": p.cache.replication_group_id,
    }


def build(cfg: StackConfig | None = None) -> dict[str, Any]:
    """The whole program: validated config first, then resources; returns the outputs."""
    return outputs(compose(cfg or load_config()))
