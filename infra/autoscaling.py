"""Wiring of pod autoscaling: KEDA (infra/components/keda.py) and the workload's ScaledObjects
(infra/components/workload/autoscaling.py), once the cluster, the cache, the workload and the
metrics workspace exist. `stack.compose` calls `wire`; the settings map to Args here.
"""

from __future__ import annotations

import pulumi

from infra.components.cache import Cache
from infra.components.cluster import Cluster
from infra.components.keda import Keda, KedaArgs
from infra.components.observability import Monitoring
from infra.components.workload import Workload, sizing
from infra.components.workload.autoscaling import PodAutoscaling, PodAutoscalingArgs
from infra.components.workload.common import Scaling
from infra.config import StackConfig


def query_url(workspace_arn: str) -> str:
    """The Prometheus API base of an AMP workspace (the scaler appends /api/v1/query)."""
    region, workspace = workspace_arn.split(":")[3], workspace_arn.rsplit("/", 1)[-1]
    return f"https://aps-workspaces.{region}.amazonaws.com/workspaces/{workspace}"


def wire(
    cfg: StackConfig,
    cluster: Cluster,
    cache: Cache,
    workload: Workload,
    monitoring: Monitoring,
    opts: pulumi.ResourceOptions,
) -> PodAutoscaling:
    """KEDA and the ScaledObjects that take over the workload's HPAs."""
    s = cfg.workload
    keda = Keda(
        "keda",
        KedaArgs(
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            prometheus_workspace_arn=monitoring.workspace_arn,
            cluster_ready=cluster.ready,
        ),
        opts,
    )
    return PodAutoscaling(
        "autoscaling",
        PodAutoscalingArgs(
            api=workload.api.scaled,
            worker=workload.worker.scaled,
            api_bounds=Scaling(
                s.api_min_replicas, s.api_max_replicas, s.hpa_cpu_target, s.hpa_memory_target
            ),
            worker_bounds=Scaling(
                s.worker_min_replicas, s.worker_max_replicas, s.hpa_cpu_target, s.hpa_memory_target
            ),
            chats_in_flight_target=sizing.chats_in_flight_target(s.max_concurrent_sessions),
            tasks_per_worker=sizing.tasks_per_worker_target(s.worker_concurrency),
            redis_host=cache.primary_endpoint,
            redis_port=cache.port,
            redis_auth_token=cache.auth_token,
            prometheus_query_url=pulumi.Output.from_input(monitoring.workspace_arn).apply(
                query_url
            ),
            region=cfg.region,
            keda=keda.release,
            namespace=workload.namespace_object,
        ),
        pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=workload)),
    )
