"""Wiring of the node autoscaler (`nodeAutoscaler`): maps the stack's settings to Karpenter's args.

With `karpenter`, the Karpenter component (controller, IAM, interruption queue, node class and
pools) is created after the cluster's system nodes, and what the rest of the stack waits for
("the cluster is ready for pods") includes its NodePools, because the service's pods only fit on
their nodes. With `cluster-autoscaler` nothing is created here; the Addons component deploys
Cluster Autoscaler for the node group.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.components.cluster import Cluster
from infra.components.karpenter import Karpenter, KarpenterArgs
from infra.components.karpenter_pools import PoolLimits
from infra.components.network import Network
from infra.components.shared_network import SharedNetwork
from infra.config import StackConfig
from infra.naming import NAME_RULES, physical_name
from infra.tags import default_tags


@dataclass(frozen=True)
class NodeAutoscaling:
    """What the node autoscaler choice gives the rest of the stack."""

    karpenter: Karpenter | None
    ready: list[pulumi.Resource]  # what pods wait for: nodes, DNS and (Karpenter) the NodePools
    cluster_autoscaler: bool  # whether the Addons component deploys Cluster Autoscaler


def node_autoscaling(
    cfg: StackConfig,
    cluster: Cluster,
    network: Network | SharedNetwork,
    account_id: str,
    opts: pulumi.ResourceOptions,
) -> NodeAutoscaling:
    """Karpenter when `nodeAutoscaler` is karpenter; otherwise nothing (Cluster Autoscaler)."""
    settings = cfg.cluster
    if not settings.karpenter:
        return NodeAutoscaling(None, list(cluster.ready), cluster_autoscaler=True)
    karpenter = Karpenter(
        "karpenter",
        KarpenterArgs(
            cluster_name=cluster.name,
            queue_name=physical_name(
                cfg.name_prefix, limit=NAME_RULES["aws:sqs/queue:Queue"].limit
            ),
            region=cfg.region,
            account_id=account_id,
            partition=cfg.partition,
            ami_alias=settings.release.ami_alias,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[
                cluster.node_security_group_id,
                network.workload_security_group_id,
            ],
            limits=PoolLimits(
                cpu=settings.node_pool_cpu_limit, memory_gib=settings.node_pool_memory_limit_gib
            ),
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            cluster_ready=cluster.ready,
            node_tags={
                **default_tags(cfg.project, cfg.stack, cfg.environment),
                "managed-by": "karpenter",
            },
            spot_service_linked_role=settings.spot_service_linked_role,
        ),
        opts,
    )
    return NodeAutoscaling(karpenter, [*cluster.ready, *karpenter.ready], cluster_autoscaler=False)
