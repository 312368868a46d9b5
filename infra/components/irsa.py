"""IAM roles for service accounts (IRSA): a role only one Kubernetes service account can assume.

EKS's pod identity webhook gives pods of an annotated service account a projected token
(audience `sts.amazonaws.com`) that STS exchanges for the role's credentials. The trust policy
pins both the subject (`system:serviceaccount:<namespace>:<name>`) and the audience, so no other
service account of the cluster, and no other OIDC client, can assume the role.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
AUDIENCE = "sts.amazonaws.com"


def subject(namespace: str, service_account: str) -> str:
    """The `sub` claim of a service account's token."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def trust_policy(
    oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str
) -> str:
    """The assume-role policy document (JSON) for one service account of one cluster.

    `oidc_issuer` is the issuer without `https://` (oidc.eks.<region>.amazonaws.com/id/<id>).
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{oidc_issuer}:sub": subject(namespace, service_account),
                            f"{oidc_issuer}:aud": AUDIENCE,
                        }
                    },
                }
            ],
        }
    )


def irsa_role(
    name: str,
    *,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
    description: str,
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """A role that only `namespace/service_account` may assume through the cluster's OIDC."""
    policy = pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda v: trust_policy(v[0], v[1], namespace, service_account)
    )
    return aws.iam.Role(
        name,
        assume_role_policy=policy,
        description=description,
        max_session_duration=3600,
        opts=opts,
    )
