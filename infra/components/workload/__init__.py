"""Workload component: the agent service on the cluster, in its own namespace.

Order of a rollout: the namespace (restricted Pod Security Standard) and its NetworkPolicies,
the service account (IRSA: may only read the RDS-managed secret), the ConfigMap and Secret,
then the migration Job - the Deployments wait for it to succeed - then the API and worker
Deployments with their HorizontalPodAutoscalers and PodDisruptionBudgets, the API's Service and
the TargetGroupBinding that puts the API pods into the ALB's target group (after the load
balancer controller, whose webhook validates it).

ConfigMap, Secret and Job are auto-named: a change creates a new object (a new Job runs the
migrations of a new image) and the Deployments roll to it; the old one goes afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import contract
from infra.components.irsa import ROLE_ARN_ANNOTATION, irsa_role
from infra.components.workload import netpol, pods

NAMESPACE = "agent"
SERVICE_ACCOUNT = "agent-service"
API = "agent-api"
WORKER = "agent-worker"
DB_SSLMODE = "require"  # TLS always (RDS forces it); the image carries no RDS CA bundle
SERVICE_PORT = 80
MIGRATION_DEADLINE_SECONDS = 600
MIGRATION_BACKOFF_LIMIT = 3
API_KEY_LENGTH = 40
COMMANDS = {
    "api": ["python", "-m", "agent_service"],
    "worker": ["python", "-m", "agent_service.worker"],
    "migrate": ["python", "-m", "agent_service.migrate"],
}


@dataclass(frozen=True)
class Scaling:
    """HPA bounds and targets of one Deployment."""

    min_replicas: int
    max_replicas: int
    cpu_target: int
    memory_target: int


@dataclass(frozen=True)
class WorkloadArgs:
    """Inputs of the Workload component."""

    kubernetes_version: str  # the Pod Security Standard version enforced
    image: pulumi.Input[str]
    image_version: str  # a short label of the image (its content tag)
    region: str
    vpc_cidr: str
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
    settings: dict[str, str]  # the rest of the service environment (ConfigMap)
    resources: pods.Resources
    api_scaling: Scaling
    worker_scaling: Scaling
    target_group_arn: pulumi.Input[str]
    cluster_ready: Sequence[pulumi.Resource]  # nodes and DNS, before any pod
    load_balancer_controller: pulumi.Resource  # serves the TargetGroupBinding webhook


def service_environment(args: WorkloadArgs) -> dict[str, pulumi.Input[str]]:
    """Non-secret environment of every container (DESIGN.md's contract)."""
    return {
        "PORT": str(contract.SERVICE_PORT),
        "DB_SECRET_ARN": args.db_secret_arn,
        "DB_HOST": args.db_host,
        "DB_PORT": pulumi.Output.from_input(args.db_port).apply(str),
        "DB_NAME": args.db_name,
        "DB_SSLMODE": DB_SSLMODE,
        "AWS_REGION": args.region,
        "SHUTDOWN_DRAIN_SECONDS": str(contract.SHUTDOWN_DRAIN_SECONDS),
        "SHUTDOWN_TIMEOUT_SECONDS": str(contract.SHUTDOWN_TIMEOUT_SECONDS),
        **args.settings,
    }


def secret_environment(
    args: WorkloadArgs, api_keys: pulumi.Output[str]
) -> pulumi.Output[dict[str, str]]:
    """REDIS_URL (TLS, AUTH token), API_KEYS and MODEL_API_KEY, as one secret Output."""
    redis_url = pulumi.Output.all(args.redis_auth_token, args.redis_host).apply(
        lambda v: f"rediss://:{v[0]}@{v[1]}:{args.redis_port}/0"
    )
    values: dict[str, pulumi.Input[str]] = {"REDIS_URL": redis_url, "API_KEYS": api_keys}
    if args.model_api_key is not None:
        values["MODEL_API_KEY"] = args.model_api_key
    return pulumi.Output.secret(pulumi.Output.all(**values))


def secret_read_policy(secret_arn: str) -> str:
    """Read exactly one secret (the RDS-managed master secret), nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadDatabaseSecret",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": secret_arn,
                }
            ],
        }
    )


class Workload(pulumi.ComponentResource):
    """Namespace, identity, configuration, migration, API, worker, scaling, ingress, policies."""

    namespace: str
    service_name: str
    role_arn: pulumi.Output[str]
    api_keys: pulumi.Output[str]  # secret: the keys clients present

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Workload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        version = f"v{args.kubernetes_version}"

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": NAMESPACE,
                "labels": {
                    f"pod-security.kubernetes.io/{mode}{suffix}": value
                    for mode in ("enforce", "audit", "warn")
                    for suffix, value in (("", "restricted"), ("-version", version))
                },
            },
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        def meta(object_name: str | None, component: str | None = None, **extra: Any) -> dict:
            metadata: dict[str, Any] = {"namespace": NAMESPACE, **extra}
            if object_name is not None:
                metadata["name"] = object_name
            if component is not None:
                metadata["labels"] = pods.labels(component, args.image_version)
            return metadata

        policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{policy}", metadata=meta(policy), spec=spec, opts=in_namespace
            )
            for policy, spec in netpol.policies(args.vpc_cidr, args.database_subnet_cidrs).items()
        ]

        role = irsa_role(
            f"{name}-irsa",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            description="The agent service: reads the database secret (IRSA)",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-db-secret-read",
            role=role.id,
            policy=pulumi.Output.from_input(args.db_secret_arn).apply(secret_read_policy),
            opts=child,
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=meta(SERVICE_ACCOUNT, "identity", annotations={ROLE_ARN_ANNOTATION: role.arn}),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta(None, "config"),
            data=service_environment(args),
            opts=in_namespace,
        )
        api_keys = args.api_keys
        if api_keys is None:
            # The API refuses to start without client keys: generate one rather than fail.
            generated = random.RandomPassword(
                f"{name}-api-key", length=API_KEY_LENGTH, special=False, opts=child
            )
            api_keys = pulumi.Output.secret(generated.result)
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=meta(None, "config"),
            type="Opaque",
            string_data=secret_environment(args, api_keys),
            opts=in_namespace,
        )
        config_ref = {"configMapRef": {"name": config.metadata["name"]}}
        secret_ref = {"secretRef": {"name": secret.metadata["name"]}}
        # Pods need nodes, DNS and their network paths before they start.
        before_pods = [*args.cluster_ready, *policies, service_account]

        migration = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata=meta(None, "migrate"),
            spec={
                "backoffLimit": MIGRATION_BACKOFF_LIMIT,
                "activeDeadlineSeconds": MIGRATION_DEADLINE_SECONDS,
                "template": {
                    "metadata": {"labels": pods.labels("migrate", args.image_version)},
                    "spec": pods.pod_spec(
                        SERVICE_ACCOUNT,
                        # Only the database settings: the Job never sees Redis or API keys.
                        [
                            pods.container(
                                "migrate",
                                args.image,
                                COMMANDS["migrate"],
                                args.resources,
                                [config_ref],
                            )
                        ],
                        restart_policy="Never",
                    ),
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=before_pods),
        )
        after_migration = pulumi.ResourceOptions(parent=self, depends_on=[*before_pods, migration])

        api = self._deployment(
            f"{name}-api",
            API,
            "api",
            pods.container(
                "api",
                args.image,
                COMMANDS["api"],
                args.resources,
                [config_ref, secret_ref],
                **pods.api_container_extras(),
            ),
            args,
            meta,
            after_migration,
        )
        worker = self._deployment(
            f"{name}-worker",
            WORKER,
            "worker",
            pods.container(
                "worker",
                args.image,
                COMMANDS["worker"],
                args.resources,
                [config_ref, secret_ref],
                **pods.worker_container_extras(),
            ),
            args,
            meta,
            after_migration,
        )
        for deployment, component, scaling in (
            (api, "api", args.api_scaling),
            (worker, "worker", args.worker_scaling),
        ):
            object_name = deployment.metadata["name"]
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-{component}-hpa",
                metadata=meta(f"agent-{component}", component),
                spec=pods.hpa_spec(
                    object_name,
                    scaling.min_replicas,
                    scaling.max_replicas,
                    scaling.cpu_target,
                    scaling.memory_target,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
            )
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{component}-pdb",
                metadata=meta(f"agent-{component}", component),
                spec=pods.pdb_spec(component),
                opts=in_namespace,
            )

        service = k8s.core.v1.Service(
            f"{name}-api-service",
            metadata=meta(API, "api"),
            spec={
                "type": "ClusterIP",
                "selector": pods.selector("api"),
                "ports": [
                    {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
                ],
            },
            opts=in_namespace,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-api-target-group-binding",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata=meta(API, "api"),
            spec={
                "targetGroupARN": args.target_group_arn,
                # Pod IPs straight from the ALB (the VPC CNI gives pods VPC addresses).
                "targetType": "ip",
                "serviceRef": {"name": service.metadata["name"], "port": SERVICE_PORT},
            },
            # The controller's CRD and webhook must exist; on destroy the binding (and its
            # finalizer) goes first, while the controller can still deregister the targets.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[namespace, args.load_balancer_controller]
            ),
        )

        self.namespace = NAMESPACE
        self.service_name = API
        self.role_arn = role.arn
        self.api_keys = api_keys
        self.register_outputs(
            {"namespace": self.namespace, "service": self.service_name, "roleArn": self.role_arn}
        )

    @staticmethod
    def _deployment(
        resource_name: str,
        object_name: str,
        component: str,
        container: dict[str, Any],
        args: WorkloadArgs,
        meta: Any,
        opts: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        """A Deployment whose replica count the HPA owns (`replicas` is never set)."""
        return k8s.apps.v1.Deployment(
            resource_name,
            metadata=meta(object_name, component),
            spec={
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": pods.selector(component)},
                # Never below the current count during a rollout: surge first, then retire.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
                },
                "template": {
                    "metadata": {
                        "labels": pods.labels(component, args.image_version),
                        "annotations": {"kubectl.kubernetes.io/default-container": component},
                    },
                    "spec": pods.pod_spec(
                        SERVICE_ACCOUNT, [container], spread=pods.selector(component)
                    ),
                },
            },
            opts=opts,
        )
