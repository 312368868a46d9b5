"""The stack outputs: what `pulumi stack output` shows, read by `python -m infra verify`, the
workflows and the runbooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # stack.py imports this module
    from infra.stack import Platform


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
        "alertTopicArn": p.monitoring.topic_arn,
        "prometheusWorkspaceArn": p.monitoring.workspace_arn,
        "prometheusEndpoint": p.monitoring.workspace_endpoint,
        "dashboardName": p.monitoring.dashboard_name,
        "accessLogBucket": p.sinks.access_log_bucket,
        "containerLogGroup": p.sinks.container_log_group.name,
    }
