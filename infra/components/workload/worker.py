"""The worker: Deployment, autoscaling and disruption budget. It serves only its metrics port:
readiness asks whether it can consume its queue, liveness whether its loop still turns
(see pods.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from infra.components.workload import pods
from infra.components.workload.common import (
    COMMANDS,
    Autoscaled,
    Scaling,
    autoscaled_deployment,
)


@dataclass(frozen=True)
class WorkerArgs:
    """Inputs of the Worker part."""

    image: pulumi.Input[str]
    image_version: str
    resources: pods.Resources
    scaling: Scaling
    env_from: Sequence[dict]  # ConfigMap and Secret
    after: Sequence[pulumi.Resource]  # pods start after these (migration, policies, identity)
    namespace: pulumi.Resource


class Worker(pulumi.ComponentResource):
    """`agent-worker`: runs the queued tasks."""

    scaled: Autoscaled  # the Deployment and its HPA

    def __init__(
        self,
        name: str,
        args: WorkerArgs,
        workload: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agent-platform:workload:Worker", f"{name}-worker-tier", None, opts)
        container = pods.container(
            "worker",
            args.image,
            COMMANDS["worker"],
            args.resources,
            list(args.env_from),
            **pods.worker_container_extras(),
        )
        self.scaled = autoscaled_deployment(
            self, workload, name, "worker", container, args.scaling, args.image_version,
            args.after, args.namespace,
        )  # fmt: skip
        self.register_outputs({})
