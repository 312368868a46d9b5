"""The migration Job: `alembic upgrade head` of a new image or configuration, before any pod.

Auto-named: a new image or configuration runs a new Job, and the Deployments wait for it to
succeed. It sees only the database settings (the ConfigMap), never Redis or the client keys.

A failed migration stops the update and leaves the previous Deployments serving. Without more,
it would also wedge every later update: by default the Kubernetes provider keeps awaiting an
unready Job on the next `pulumi up` (with unchanged inputs: the same failed Job). With
`pulumi.com/replaceUnready` the next `pulumi up` replaces it, so it runs the migration again.
Pulumi waits longer than the Job's own deadline, so a slow migration fails with the Job's
reason (DeadlineExceeded, BackoffLimitExceeded) rather than a provider timeout. The Job starts
only after the IAM policy that lets it read the database secret exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.workload import pods
from infra.components.workload.common import COMMANDS, SERVICE_ACCOUNT, metadata, moved

MIGRATION_DEADLINE_SECONDS = 600
MIGRATION_BACKOFF_LIMIT = 3  # also absorbs IAM's few seconds of propagation of a new policy
# pulumi-kubernetes awaits a Job for 10 minutes by default; outlast the Job's own deadline plus
# the time its pod may wait for a node.
MIGRATION_AWAIT = "20m"
# pulumi-kubernetes: replace (rather than keep awaiting) a Job left unready by a previous update.
REPLACE_UNREADY = {"pulumi.com/replaceUnready": "true"}


@dataclass(frozen=True)
class MigrationArgs:
    """Inputs of the Migration part."""

    image: pulumi.Input[str]
    image_version: str
    resources: pods.Resources
    config_ref: dict  # envFrom entry of the ConfigMap
    # What the Job's pod needs first: nodes, DNS, NetworkPolicies, and the IAM policies of its
    # role (without them its first attempts fail to read the database secret).
    before: Sequence[pulumi.Resource]


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
        options = pulumi.ResourceOptions.merge(
            moved(self, workload, args.before),
            pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(
                    create=MIGRATION_AWAIT, update=MIGRATION_AWAIT
                )
            ),
        )
        self.job = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata=metadata(None, "migrate", args.image_version, annotations=REPLACE_UNREADY),
            spec={
                "backoffLimit": MIGRATION_BACKOFF_LIMIT,
                "activeDeadlineSeconds": MIGRATION_DEADLINE_SECONDS,
                "template": {
                    "metadata": {"labels": pods.labels("migrate", args.image_version)},
                    "spec": pods.pod_spec(SERVICE_ACCOUNT, [container], restart_policy="Never"),
                },
            },
            opts=options,
        )
        self.register_outputs({})
