"""PodAutoscaling component: KEDA ScaledObjects for the API and the worker, and how their
triggers authenticate.

Each ScaledObject keeps what the HPA it replaces had - the bounds, CPU and memory utilisation
triggers, the scale behaviour - and adds the signal an LLM workload has when CPU says nothing:

- worker: tasks queued (`lag` of the consumer group, XINFO GROUPS) plus tasks running (pending
  entries, XPENDING) of both priority streams. One trigger each; separate triggers would give
  the HPA the highest of them, so `scalingModifiers` sums the four into one composite metric
  with a target of WORKER_CONCURRENCY per worker: N tasks -> ceil(N / WORKER_CONCURRENCY)
  workers, and a worker whose slots are busy keeps counting. Never below `minReplicaCount`
  (>= 1): the worker also runs the reconciler and the retention jobs;
- API: chats in flight per pod (`agent_chats_in_flight`, queried from the stack's Amazon
  Managed Service for Prometheus workspace), target from sizing.py.

Migration without a gap: each ScaledObject carries `scaledobject.keda.sh/transfer-hpa-ownership`
and names the HPA Pulumi created (`horizontalPodAutoscalerConfig.name`), so KEDA adopts that HPA
instead of making a second one; it is created after the HPA and after KEDA. The HPA resource
stays in the program for this release (common.py: retained on delete) - README "How it scales".

Redis reaches KEDA through the TriggerAuthentication `redis` over the Secret `keda-redis`
(`address` host:port, `password` the AUTH token, `tls` "enable": ElastiCache requires TLS; set
here once, never as `enableTLS` on a trigger, which KEDA refuses alongside). Prometheus through
the TriggerAuthentication `aws` (KEDA's own IRSA role, infra/components/keda.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.workload import pods
from infra.components.workload.common import (
    API,
    NAMESPACE,
    WORKER,
    Autoscaled,
    Scaling,
    metadata,
)

KEDA_API = "keda.sh/v1alpha1"
TRANSFER_HPA = "scaledobject.keda.sh/transfer-hpa-ownership"
REDIS_SECRET = "keda-redis"  # noqa: S105 - the Secret's name
REDIS_AUTH = "redis"
AWS_AUTH = "aws"
# The service's streams and group (service/agent_service/core/queue.py).
STREAMS = {"high": "agent:tasks:high", "normal": "agent:tasks:normal"}
GROUP = "agent-workers"
POLLING_SECONDS = 15  # as often as the HPA syncs
CHATS_IN_FLIGHT_QUERY = f'sum(agent_chats_in_flight{{namespace="{NAMESPACE}",component="api"}})'


@dataclass(frozen=True)
class PodAutoscalingArgs:
    """Inputs of the PodAutoscaling component."""

    api: Autoscaled
    worker: Autoscaled
    api_bounds: Scaling
    worker_bounds: Scaling
    chats_in_flight_target: int  # per API pod (sizing.py)
    tasks_per_worker: int  # WORKER_CONCURRENCY
    redis_host: pulumi.Input[str]
    redis_port: int
    redis_auth_token: pulumi.Output[str]  # secret
    prometheus_query_url: pulumi.Input[str]  # https://aps-workspaces.<region>.../workspaces/ws-..
    region: str
    keda: pulumi.Resource  # the release: CRDs and webhooks
    namespace: pulumi.Resource


def resource_triggers(bounds: Scaling) -> list[dict[str, Any]]:
    """CPU and memory utilisation, as the HPA had them."""
    return [
        {"type": kind, "metricType": "Utilization", "metadata": {"value": str(target)}}
        for kind, target in (("cpu", bounds.cpu_target), ("memory", bounds.memory_target))
    ]


def stream_triggers(tasks_per_worker: int) -> list[dict[str, Any]]:
    """Lag and pending entries of each priority stream, named for the formula. With
    `consumerGroup` the scaler reads XINFO GROUPS lag when `lagCount` is set, else XPENDING;
    their own thresholds are unused under scalingModifiers (the formula's target counts)."""
    triggers = []
    for priority, stream in STREAMS.items():
        for signal, threshold in (("lag", "lagCount"), ("pending", "pendingEntriesCount")):
            triggers.append(
                {
                    "type": "redis-streams",
                    "name": f"{priority}_{signal}",
                    "authenticationRef": {"name": REDIS_AUTH},
                    "metadata": {
                        "stream": stream,
                        "consumerGroup": GROUP,
                        threshold: str(tasks_per_worker),
                    },
                }
            )
    return triggers


def formula() -> str:
    """Queued + running tasks of both streams."""
    return " + ".join(f"{p}_{s}" for p in STREAMS for s in ("lag", "pending"))


def scaled_object_spec(
    target: str,
    bounds: Scaling,
    triggers: list[dict[str, Any]],
    scaling_modifiers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ScaledObject adopting the HPA `target` (same name), with the HPA's behaviour."""
    hpa = pods.hpa_spec(
        target, bounds.min_replicas, bounds.max_replicas, bounds.cpu_target, bounds.memory_target
    )
    advanced: dict[str, Any] = {
        "horizontalPodAutoscalerConfig": {"name": target, "behavior": hpa["behavior"]}
    }
    if scaling_modifiers is not None:
        advanced["scalingModifiers"] = scaling_modifiers
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicaCount": max(1, bounds.min_replicas),
        "maxReplicaCount": bounds.max_replicas,
        "pollingInterval": POLLING_SECONDS,
        "advanced": advanced,
        "triggers": triggers,
    }


class PodAutoscaling(pulumi.ComponentResource):
    """The ScaledObjects of the API and the worker, and their TriggerAuthentications."""

    def __init__(
        self, name: str, args: PodAutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("agent-platform:workload:PodAutoscaling", name, None, opts)
        keda = [args.keda, args.namespace]
        secret = k8s.core.v1.Secret(
            f"{name}-redis-secret",
            metadata=metadata(REDIS_SECRET, "autoscaling"),
            type="Opaque",
            string_data=pulumi.Output.secret(
                pulumi.Output.all(args.redis_host, args.redis_auth_token).apply(
                    lambda v: {
                        "address": f"{v[0]}:{args.redis_port}",
                        "password": v[1],
                        "tls": "enable",
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.namespace]),
        )
        redis_auth = self._custom(
            f"{name}-redis-auth",
            "TriggerAuthentication",
            REDIS_AUTH,
            {
                "secretTargetRef": [
                    {"parameter": key, "name": REDIS_SECRET, "key": key}
                    for key in ("address", "password", "tls")
                ]
            },
            [*keda, secret],
        )
        aws_auth = self._custom(
            f"{name}-aws-auth",
            "TriggerAuthentication",
            AWS_AUTH,
            {"podIdentity": {"provider": "aws", "identityOwner": "keda"}},
            keda,
        )
        worker_spec = scaled_object_spec(
            WORKER,
            args.worker_bounds,
            [*stream_triggers(args.tasks_per_worker), *resource_triggers(args.worker_bounds)],
            {
                "formula": formula(),
                "target": str(args.tasks_per_worker),
                "metricType": "AverageValue",
            },
        )
        self._custom(
            f"{name}-worker",
            "ScaledObject",
            WORKER,
            worker_spec,
            [*keda, redis_auth, args.worker.deployment, args.worker.hpa],
            component="worker",
            annotations={TRANSFER_HPA: "true"},
        )
        chats = {
            "type": "prometheus",
            "name": "chats_in_flight",
            "metricType": "AverageValue",
            "authenticationRef": {"name": AWS_AUTH},
            "metadata": {
                "serverAddress": args.prometheus_query_url,
                "awsRegion": args.region,
                "query": CHATS_IN_FLIGHT_QUERY,
                "threshold": str(args.chats_in_flight_target),
            },
        }
        self._custom(
            f"{name}-api",
            "ScaledObject",
            API,
            scaled_object_spec(API, args.api_bounds, [*resource_triggers(args.api_bounds), chats]),
            [*keda, aws_auth, args.api.deployment, args.api.hpa],
            component="api",
            annotations={TRANSFER_HPA: "true"},
        )
        self.register_outputs({})

    def _custom(
        self,
        resource_name: str,
        kind: str,
        object_name: str,
        spec: dict[str, Any],
        depends_on: list[pulumi.Resource],
        component: str = "autoscaling",
        annotations: dict[str, str] | None = None,
    ) -> k8s.apiextensions.CustomResource:
        extra = {"annotations": annotations} if annotations else {}
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=KEDA_API,
            kind=kind,
            metadata=metadata(object_name, component, **extra),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
