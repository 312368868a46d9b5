"""The migration Job: `alembic upgrade head` of a new image or configuration, before any pod.

Auto-named: a new image or configuration runs a new Job, and the Deployments wait for it to
succeed. It sees only the database settings (the ConfigMap), never Redis or the client keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.workload import pods
from infra.components.workload.common import COMMANDS, SERVICE_ACCOUNT, metadata, moved

MIGRATION_DEADLINE_SECONDS = 600
MIGRATION_BACKOFF_LIMIT = 3


@dataclass(frozen=True)
class MigrationArgs:
    """Inputs of the Migration part."""

    image: pulumi.Input[str]
    image_version: str
    resources: pods.Resources
    config_ref: dict  # envFrom entry of the ConfigMap
    before: Sequence[pulumi.Resource]  # what the Job's pod needs first (nodes, DNS, policies)


class Migration(pulumi.ComponentResource):
    """One Job per image and configuration; the Deployments depend on `job`."""

    job: k8s.batch.v1.Job

    def __init__(
        self,
        name: str,
        args: MigrationArgs,
        workload: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agent-platform:workload:Migration", f"{name}-migration", None, opts)
        container = pods.container(
            "migrate", args.image, COMMANDS["migrate"], args.resources, [args.config_ref]
        )
        self.job = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata=metadata(None, "migrate", args.image_version),
            spec={
                "backoffLimit": MIGRATION_BACKOFF_LIMIT,
                "activeDeadlineSeconds": MIGRATION_DEADLINE_SECONDS,
                "template": {
                    "metadata": {"labels": pods.labels("migrate", args.image_version)},
                    "spec": pods.pod_spec(SERVICE_ACCOUNT, [container], restart_policy="Never"),
                },
            },
            opts=moved(self, workload, args.before),
        )
        self.register_outputs({})
