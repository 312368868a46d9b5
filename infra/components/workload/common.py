"""Names and metadata the workload's parts share, and the options that move a resource under a
part while keeping its identity.

The parts (Foundation, Migration, Api, Worker) were once one component; every resource they
create carries an alias to its URN under the Workload component, so a stack created before the
split keeps every resource on its next `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import contract
from infra.components.workload import pods

NAMESPACE = "agent"
SERVICE_ACCOUNT = "agent-service"
API = "agent-api"
WORKER = "agent-worker"
COMMANDS = contract.COMMANDS  # the service's own (service/contract.json)


def metadata(
    object_name: str | None,
    component: str | None = None,
    version: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Metadata of an object in the namespace (auto-named when `object_name` is None)."""
    meta: dict[str, Any] = {"namespace": NAMESPACE, **extra}
    if object_name is not None:
        meta["name"] = object_name
    if component is not None:
        meta["labels"] = pods.labels(component, version)
    return meta


def moved(
    part: pulumi.Resource,
    workload: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> pulumi.ResourceOptions:
    """Options of a resource created by `part` that used to be a child of `workload`."""
    return pulumi.ResourceOptions(
        parent=part,
        aliases=[pulumi.Alias(parent=workload)],
        depends_on=list(depends_on) or None,
    )


@dataclass(frozen=True)
class Scaling:
    """Autoscaling bounds and targets of one Deployment."""

    min_replicas: int
    max_replicas: int
    cpu_target: int
    memory_target: int


@dataclass(frozen=True)
class Autoscaled:
    """A Deployment and the HPA Pulumi made for it before KEDA (kept for one release)."""

    deployment: k8s.apps.v1.Deployment
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler


def autoscaled_deployment(
    part: pulumi.Resource,
    workload: pulumi.Resource,
    name: str,
    component: str,
    container: dict[str, Any],
    scaling: Scaling,
    version: str,
    after: Sequence[pulumi.Resource],
    namespace: pulumi.Resource,
) -> Autoscaled:
    """`agent-<component>`: its Deployment (after `after`), HPA and PodDisruptionBudget.

    The HPA is the one a KEDA ScaledObject (workload/autoscaling.py) adopts under the same name.
    It stays in the program for one release so existing stacks keep an HPA until KEDA owns it:
    `retain_on_delete` makes its later removal from the program leave the object (KEDA's by
    then) in the cluster, and Pulumi no longer updates what KEDA now writes (`ignore_changes`).
    New stacks create it too, then the ScaledObject, which adopts it at once.
    """
    object_name = f"agent-{component}"
    deployment = k8s.apps.v1.Deployment(
        f"{name}-{component}",
        metadata=metadata(object_name, component, version),
        spec=pods.deployment_spec(component, container, SERVICE_ACCOUNT, version),
        opts=moved(part, workload, after),
    )
    hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{name}-{component}-hpa",
        metadata=metadata(object_name, component, version),
        spec=pods.hpa_spec(
            deployment.metadata["name"],
            scaling.min_replicas,
            scaling.max_replicas,
            scaling.cpu_target,
            scaling.memory_target,
        ),
        opts=pulumi.ResourceOptions.merge(
            moved(part, workload, [deployment]),
            pulumi.ResourceOptions(retain_on_delete=True, ignore_changes=["metadata", "spec"]),
        ),
    )
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-{component}-pdb",
        metadata=metadata(object_name, component, version),
        spec=pods.pdb_spec(component),
        opts=moved(part, workload, [namespace]),
    )
    return Autoscaled(deployment, hpa)
