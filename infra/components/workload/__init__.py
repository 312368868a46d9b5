"""Workload component: the agent service on the cluster, in its own namespace.

It is made of four parts, each a component of its own:

- `Foundation` (foundation.py): namespace, NetworkPolicies, service account and IAM role,
  ConfigMap and Secret;
- `Migration` (migration.py): the Job that migrates the database, before any pod;
- `Api` (api.py): Deployment, HPA, PDB, Service and TargetGroupBinding;
- `Worker` (worker.py): Deployment, HPA and PDB.

KEDA's ScaledObjects, which adopt both HPAs, are `PodAutoscaling` (autoscaling.py), wired by
infra/autoscaling.py once the metrics workspace exists.

A rollout goes: policies and identity, configuration, the migration Job (the Deployments wait
for it to succeed), then the Deployments. This module also maps the stack's workload settings
and the platform's endpoints to the service's environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from infra import contract
from infra.components.workload import bedrock, pods
from infra.components.workload.api import Api, ApiArgs
from infra.components.workload.common import NAMESPACE, Scaling
from infra.components.workload.foundation import Foundation, FoundationArgs
from infra.components.workload.migration import Migration, MigrationArgs
from infra.components.workload.worker import Worker, WorkerArgs
from infra.config import WorkloadConfig

__all__ = ["Workload", "WorkloadArgs"]

# TLS to RDS, its certificate checked against RDS's CAs and the endpoint's name; the image
# carries the bundle (service/certs/README.md says where it comes from).
DB_SSLMODE = "verify-full"
DB_SSLROOTCERT = "/app/certs/rds-global-bundle.pem"


@dataclass(frozen=True)
class WorkloadArgs:
    """Inputs of the Workload component."""

    settings: WorkloadConfig  # the stack's workload keys
    kubernetes_version: str  # the Pod Security Standard version enforced
    image: pulumi.Input[str]
    image_version: str  # a short label of the image (its content tag)
    region: str
    account_id: str
    partition: str
    http_keepalive_timeout_seconds: int  # longer than the ALB's idle timeout
    load_balancer_subnet_cidrs: Sequence[str]  # the only sources of the API's port
    scraper_subnet_cidrs: Sequence[str]  # the only sources of the metrics port
    database_subnet_cidrs: Sequence[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    db_secret_arn: pulumi.Input[str]
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: str
    redis_host: pulumi.Input[str]
    redis_port: int
    redis_auth_token: pulumi.Output[str]  # secret
    api_keys: pulumi.Output[str] | None  # secret; None: one key is generated
    model_api_key: pulumi.Output[str] | None  # secret
    target_group_arn: pulumi.Input[str]
    cluster_ready: Sequence[pulumi.Resource]  # nodes and DNS, before any pod
    load_balancer_controller: pulumi.Resource  # serves the TargetGroupBinding webhook


def service_settings(settings: WorkloadConfig) -> dict[str, str]:
    """The service's non-secret settings that come from the stack config."""
    env = {
        "AGENT_TYPE": settings.agent_type,
        "MAX_CONCURRENT_SESSIONS": str(settings.max_concurrent_sessions),
        "WORKER_CONCURRENCY": str(settings.worker_concurrency),
        "MODEL_BACKEND": settings.model_backend,
        "LOG_LEVEL": settings.log_level,
    }
    if settings.model_url:
        env["MODEL_URL"] = settings.model_url
    if settings.model_id:
        env["MODEL_ID"] = settings.model_id
    return env


def service_environment(args: WorkloadArgs) -> dict[str, pulumi.Input[str]]:
    """Non-secret environment of every container (the ConfigMap)."""
    return {
        "PORT": str(contract.SERVICE_PORT),
        "METRICS_PORT": str(contract.METRICS_PORT),
        "DB_SECRET_ARN": args.db_secret_arn,
        "DB_HOST": args.db_host,
        "DB_PORT": pulumi.Output.from_input(args.db_port).apply(str),
        "DB_NAME": args.db_name,
        "DB_SSLMODE": DB_SSLMODE,
        "DB_SSLROOTCERT": DB_SSLROOTCERT,
        "AWS_REGION": args.region,
        "SHUTDOWN_DRAIN_SECONDS": str(contract.SHUTDOWN_DRAIN_SECONDS),
        "SHUTDOWN_TIMEOUT_SECONDS": str(contract.SHUTDOWN_TIMEOUT_SECONDS),
        "KEEP_ALIVE_TIMEOUT_SECONDS": str(args.http_keepalive_timeout_seconds),
        **service_settings(args.settings),
    }


def secret_environment(args: WorkloadArgs) -> dict[str, pulumi.Input[str]]:
    """REDIS_URL (TLS, AUTH token) and MODEL_API_KEY (the Secret; API_KEYS is added by the
    Foundation, which generates a key when none is configured)."""
    redis_url = pulumi.Output.all(args.redis_auth_token, args.redis_host).apply(
        lambda v: f"rediss://:{v[0]}@{v[1]}:{args.redis_port}/0"
    )
    values: dict[str, pulumi.Input[str]] = {"REDIS_URL": redis_url}
    if args.model_api_key is not None:
        values["MODEL_API_KEY"] = args.model_api_key
    return values


class Workload(pulumi.ComponentResource):
    """Foundation, migration, API and worker of the agent service."""

    namespace: str
    service_name: str
    role_arn: pulumi.Output[str]
    api_keys: pulumi.Output[str]  # secret: the keys clients present
    api: Api  # .scaled: the Deployment and HPA a ScaledObject takes over
    worker: Worker
    namespace_object: pulumi.Resource  # the Namespace `namespace`

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Workload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        resources = pods.Resources(s.cpu_request, s.memory_request, s.cpu_limit, s.memory_limit)

        foundation = Foundation(
            name,
            FoundationArgs(
                kubernetes_version=args.kubernetes_version,
                image_version=args.image_version,
                load_balancer_subnet_cidrs=args.load_balancer_subnet_cidrs,
                scraper_subnet_cidrs=args.scraper_subnet_cidrs,
                database_subnet_cidrs=args.database_subnet_cidrs,
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                db_secret_arn=args.db_secret_arn,
                environment=service_environment(args),
                secret_environment=secret_environment(args),
                api_keys=args.api_keys,
                bedrock_policy=bedrock.invoke_policy(
                    s.model_id, args.region, args.account_id, args.partition
                )
                if s.model_backend == "bedrock"
                else None,
            ),
            self,
            child,
        )
        # Pods need nodes, DNS, their network paths and their IAM permissions before they start.
        before_pods = [
            *args.cluster_ready,
            *foundation.policies,
            foundation.service_account,
            *foundation.permissions,
        ]
        migration = Migration(
            name,
            MigrationArgs(
                image=args.image,
                image_version=args.image_version,
                resources=resources,
                config_ref=foundation.config_ref,
                before=before_pods,
            ),
            self,
            child,
        )
        after_migration = [*before_pods, migration.job]
        env_from = [foundation.config_ref, foundation.secret_ref]
        self.api = Api(
            name,
            ApiArgs(
                image=args.image,
                image_version=args.image_version,
                resources=resources,
                scaling=Scaling(
                    s.api_min_replicas, s.api_max_replicas, s.hpa_cpu_target, s.hpa_memory_target
                ),
                env_from=env_from,
                after=after_migration,
                namespace=foundation.namespace,
                target_group_arn=args.target_group_arn,
                load_balancer_controller=args.load_balancer_controller,
            ),
            self,
            child,
        )
        self.worker = Worker(
            name,
            WorkerArgs(
                image=args.image,
                image_version=args.image_version,
                resources=resources,
                scaling=Scaling(
                    s.worker_min_replicas,
                    s.worker_max_replicas,
                    s.hpa_cpu_target,
                    s.hpa_memory_target,
                ),
                env_from=env_from,
                after=after_migration,
                namespace=foundation.namespace,
            ),
            self,
            child,
        )
        self.namespace = NAMESPACE
        self.namespace_object = foundation.namespace
        self.service_name = "agent-api"
        self.role_arn = foundation.role.arn
        self.api_keys = foundation.api_keys
        self.register_outputs(
            {"namespace": self.namespace, "service": self.service_name, "roleArn": self.role_arn}
        )
