"""The API: Deployment, autoscaling and disruption budget, its Service, and the binding that
puts its pods into the ALB's target group. The namespace's readiness-gate label makes the load
balancer controller hold each new pod unready until the ALB sees it healthy, so a rollout never
retires old pods before their replacements take traffic.

The TargetGroupBinding needs the load balancer controller (its CRD and webhook) and is deleted
before it on destroy, while the controller can still deregister the targets and drop the
finalizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.workload import pods
from infra.components.workload.common import (
    API,
    COMMANDS,
    Autoscaled,
    Scaling,
    autoscaled_deployment,
    metadata,
    moved,
)

SERVICE_PORT = 80


@dataclass(frozen=True)
class ApiArgs:
    """Inputs of the Api part."""

    image: pulumi.Input[str]
    image_version: str
    resources: pods.Resources
    scaling: Scaling
    env_from: Sequence[dict]  # ConfigMap and Secret
    after: Sequence[pulumi.Resource]  # pods start after these (migration, policies, identity)
    namespace: pulumi.Resource
    target_group_arn: pulumi.Input[str]
    load_balancer_controller: pulumi.Resource  # serves the TargetGroupBinding webhook


class Api(pulumi.ComponentResource):
    """`agent-api` behind the ALB."""

    scaled: Autoscaled  # the Deployment and its HPA

    def __init__(
        self,
        name: str,
        args: ApiArgs,
        workload: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agent-platform:workload:Api", f"{name}-api-tier", None, opts)
        container = pods.container(
            "api",
            args.image,
            COMMANDS["api"],
            args.resources,
            list(args.env_from),
            **pods.api_container_extras(),
        )
        service = k8s.core.v1.Service(
            f"{name}-api-service",
            metadata=metadata(API, "api", args.image_version),
            spec={
                "type": "ClusterIP",
                "selector": pods.selector("api"),
                "ports": [
                    {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
                ],
            },
            opts=moved(self, workload, [args.namespace]),
        )
        binding = k8s.apiextensions.CustomResource(
            f"{name}-api-target-group-binding",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata=metadata(API, "api", args.image_version),
            spec={
                "targetGroupARN": args.target_group_arn,
                # Pod IPs straight from the ALB (the VPC CNI gives pods VPC addresses).
                "targetType": "ip",
                "serviceRef": {"name": service.metadata["name"], "port": SERVICE_PORT},
            },
            opts=moved(self, workload, [args.namespace, args.load_balancer_controller]),
        )
        # The controller injects the target-health readiness gate only into pods created once a
        # binding refers to their Service: the pods come after it.
        self.scaled = autoscaled_deployment(
            self, workload, name, "api", container, args.scaling, args.image_version,
            [*args.after, binding], args.namespace,
        )  # fmt: skip
        self.register_outputs({"service": API})
