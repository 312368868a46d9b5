"""Foundation of the workload: namespace, network policies, identity and configuration.

The namespace enforces the `restricted` Pod Security Standard; its NetworkPolicies deny
everything, then open what the service needs by name. The service account's IAM role (IRSA) may
only read the RDS-managed secret, and with the Bedrock backend invoke the configured model. The
ConfigMap carries the service's non-secret environment, the Secret its Redis URL (TLS, AUTH
token), client keys and model key; both are auto-named, so a change creates a new object, the
Deployments roll to it and the old one goes afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.irsa import ROLE_ARN_ANNOTATION, irsa_role
from infra.components.workload import netpol
from infra.components.workload.common import NAMESPACE, SERVICE_ACCOUNT, metadata, moved

API_KEY_LENGTH = 40
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"


@dataclass(frozen=True)
class FoundationArgs:
    """Inputs of the Foundation part."""

    kubernetes_version: str  # the Pod Security Standard version enforced
    image_version: str
    load_balancer_subnet_cidrs: Sequence[str]
    scraper_subnet_cidrs: Sequence[str]
    database_subnet_cidrs: Sequence[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    db_secret_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]  # the ConfigMap
    secret_environment: Mapping[str, pulumi.Input[str]]  # the Secret (values are secrets)
    api_keys: pulumi.Output[str] | None  # secret; None: one key is generated
    bedrock_policy: str | None = None  # with modelBackend bedrock: invoke the configured model


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


class Foundation(pulumi.ComponentResource):
    """Namespace, NetworkPolicies, service account with its IAM role, ConfigMap and Secret."""

    namespace: k8s.core.v1.Namespace
    policies: list[k8s.networking.v1.NetworkPolicy]
    service_account: k8s.core.v1.ServiceAccount
    role: aws.iam.Role
    permissions: list[aws.iam.RolePolicy]  # the role's policies: pods start after them
    config_ref: dict  # envFrom entries of the pods
    secret_ref: dict
    api_keys: pulumi.Output[str]  # secret: the keys clients present

    def __init__(
        self,
        name: str,
        args: FoundationArgs,
        workload: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("agent-platform:workload:Foundation", f"{name}-foundation", None, opts)
        version = f"v{args.kubernetes_version}"

        def meta(object_name: str | None, component: str | None = None, **extra) -> dict:
            return metadata(object_name, component, args.image_version, **extra)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": NAMESPACE,
                "labels": {
                    **{
                        f"pod-security.kubernetes.io/{mode}{suffix}": value
                        for mode in ("enforce", "audit", "warn")
                        for suffix, value in (("", "restricted"), ("-version", version))
                    },
                    # The load balancer controller gives API pods a readiness gate: a rollout
                    # continues only once new pods are healthy in the ALB's target group.
                    READINESS_GATE_LABEL: "enabled",
                },
            },
            opts=moved(self, workload),
        )
        in_namespace = moved(self, workload, [namespace])
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{policy}", metadata=meta(policy), spec=spec, opts=in_namespace
            )
            for policy, spec in netpol.policies(
                args.load_balancer_subnet_cidrs,
                args.scraper_subnet_cidrs,
                args.database_subnet_cidrs,
            ).items()
        ]
        role = irsa_role(
            f"{name}-irsa",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            description="The agent service: reads the database secret (IRSA)",
            opts=moved(self, workload),
        )
        secret_read = aws.iam.RolePolicy(
            f"{name}-db-secret-read",
            role=role.id,
            policy=pulumi.Output.from_input(args.db_secret_arn).apply(secret_read_policy),
            opts=moved(self, workload),
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=meta(SERVICE_ACCOUNT, "identity", annotations={ROLE_ARN_ANNOTATION: role.arn}),
            automount_service_account_token=False,
            opts=in_namespace,
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta(None, "config"),
            data=dict(args.environment),
            opts=in_namespace,
        )
        api_keys = args.api_keys
        if api_keys is None:
            # The API refuses to start without client keys: generate one rather than fail.
            generated = random.RandomPassword(
                f"{name}-api-key", length=API_KEY_LENGTH, special=False, opts=moved(self, workload)
            )
            api_keys = pulumi.Output.secret(generated.result)
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=meta(None, "config"),
            type="Opaque",
            string_data=pulumi.Output.secret(
                pulumi.Output.all(**{**args.secret_environment, "API_KEYS": api_keys})
            ),
            opts=in_namespace,
        )
        self.permissions = [secret_read]
        if args.bedrock_policy is not None:
            self.permissions.append(
                aws.iam.RolePolicy(
                    f"{name}-bedrock-invoke",
                    role=role.id,
                    policy=args.bedrock_policy,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.namespace = namespace
        self.role = role
        self.api_keys = api_keys
        self.config_ref = {"configMapRef": {"name": config.metadata["name"]}}
        self.secret_ref = {"secretRef": {"name": secret.metadata["name"]}}
        self.register_outputs({"namespace": NAMESPACE, "roleArn": role.arn})
