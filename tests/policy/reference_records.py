"""Hand-built resource records that pass every policy, and ways to break them.

The EKS and Kubernetes parts are built here rather than taken from the program: the policies
must hold for any program (and for the pulumi-eks children a real preview shows, which mocks
never register), and a broken case must not depend on another component's current shape.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.policy.policy_harness import PolicyGraph, aws_provider, default_tags, resource

STACK = "dev"
PROVIDER = aws_provider(STACK, default_tags(STACK, "dev"))
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
COMPONENT_PARENT = "agent-platform:infra:Cluster"
WORKLOAD_PARENT = "agent-platform:infra:Workload"
LABELS = {"app.kubernetes.io/name": "agent-service", "app.kubernetes.io/component": "api"}


def eks_component(**changes: Any):
    """The pulumi-eks Cluster component's inputs (what mocks show)."""
    inputs = {
        "name": "agent-platform-dev",
        "encryptionConfigKeyArn": KMS_KEY,
        "enabledClusterLogTypes": ["api", "audit", "authenticator"],
        "skipDefaultNodeGroup": True,
        **changes,
    }
    return resource(
        STACK,
        "eks:index:Cluster",
        "eks",
        _drop_none(inputs),
        parent_type=COMPONENT_PARENT,
        custom=False,
    )


def managed_node_group(**changes: Any):
    """The pulumi-eks ManagedNodeGroup component's inputs."""
    inputs = {"instanceTypes": ["t3.medium"], "enableIMDSv2": True, **changes}
    return resource(
        STACK,
        "eks:index:ManagedNodeGroup",
        "general",
        _drop_none(inputs),
        parent_type=COMPONENT_PARENT,
        custom=False,
    )


def eks_cluster(**changes: Any):
    """The aws:eks/cluster:Cluster pulumi-eks creates (visible in a real preview)."""
    inputs = {
        "name": "agent-platform-dev",
        "encryptionConfig": {"provider": {"keyArn": KMS_KEY}, "resources": ["secrets"]},
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "scheduler"],
        **changes,
    }
    return resource(
        STACK,
        "aws:eks/cluster:Cluster",
        "eks-cluster",
        _drop_none(inputs),
        provider=PROVIDER,
        parent_type="eks:index:Cluster",
    )


def eks_node_group(**changes: Any):
    """The aws:eks/nodeGroup:NodeGroup a ManagedNodeGroup creates."""
    inputs = {"launchTemplate": {"id": "lt-0123", "version": "1"}, **changes}
    return resource(
        STACK,
        "aws:eks/nodeGroup:NodeGroup",
        "general-ng",
        _drop_none(inputs),
        provider=PROVIDER,
        parent_type="eks:index:ManagedNodeGroup",
    )


def launch_template(http_tokens: str = "required"):
    """A node launch template."""
    inputs = {"metadataOptions": {"httpTokens": http_tokens, "httpPutResponseHopLimit": 2.0}}
    return resource(
        STACK, "aws:ec2/launchTemplate:LaunchTemplate", "nodes", inputs, provider=PROVIDER
    )


def ecr_repository(**changes: Any):
    """The service's image repository."""
    inputs = {
        "name": "agent-platform-dev-agent-service",
        "encryptionConfigurations": [{"encryptionType": "KMS"}],
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        **changes,
    }
    return resource(
        STACK, "aws:ecr/repository:Repository", "repository", _drop_none(inputs), provider=PROVIDER
    )


def container(**changes: Any) -> dict[str, Any]:
    """A container that passes every workload policy."""
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    spec = {
        "name": "api",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.4.2",
        "ports": [{"containerPort": 8000.0, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
        "livenessProbe": probe,
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001.0,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        **changes,
    }
    return _drop_none(spec)


def deployment(name: str = "agent-api", containers: list[dict] | None = None, **pod: Any):
    """A Deployment of `containers` (default: one passing container)."""
    inputs = {
        "metadata": {"name": name, "namespace": "agent"},
        "spec": {
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {"containers": containers or [container()], **pod},
            },
        },
    }
    return resource(
        STACK, "kubernetes:apps/v1:Deployment", name, inputs, parent_type=WORKLOAD_PARENT
    )


def hpa(target: str = "agent-api"):
    """An HPA scaling Deployment `target`."""
    inputs = {
        "metadata": {"name": "agent-api", "namespace": "agent"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1.0,
            "maxReplicas": 3.0,
        },
    }
    return resource(
        STACK,
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "agent-api-hpa",
        inputs,
        parent_type=WORKLOAD_PARENT,
    )


def scaled_object(target: str = "agent-api", kind: str | None = None):
    """A KEDA ScaledObject scaling `target` (scaleTargetRef.kind left to its default)."""
    ref = {"name": target, **({"kind": kind} if kind else {})}
    inputs = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "agent-api", "namespace": "agent"},
        "spec": {"scaleTargetRef": ref, "triggers": [{"type": "cpu", "metadata": {}}]},
    }
    return resource(
        STACK,
        "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "agent-api-scaledobject",
        inputs,
        parent_type=WORKLOAD_PARENT,
    )


def pdb(match_labels: dict[str, str] | None = None):
    """A PDB selecting the API pods (or `match_labels`)."""
    inputs = {
        "metadata": {"name": "agent-api", "namespace": "agent"},
        "spec": {"selector": {"matchLabels": match_labels or LABELS}, "maxUnavailable": 1.0},
    }
    return resource(
        STACK,
        "kubernetes:policy/v1:PodDisruptionBudget",
        "agent-api-pdb",
        inputs,
        parent_type=WORKLOAD_PARENT,
    )


def good_graph() -> PolicyGraph:
    """Provider, EKS (components and children), ECR and a workload: every policy passes."""
    return PolicyGraph(
        STACK,
        (
            PROVIDER,
            eks_component(),
            managed_node_group(),
            eks_cluster(),
            eks_node_group(),
            launch_template(),
            ecr_repository(),
            deployment(),
            hpa(),
            pdb(),
        ),
    )


def replaced(graph: PolicyGraph, *records) -> PolicyGraph:
    """`graph` with the records of the same names replaced by `records`."""
    by_name = {r.name: r for r in records}
    return PolicyGraph(
        graph.stack,
        tuple(by_name.pop(r.name, r) for r in graph.resources) + tuple(by_name.values()),
        graph.dependencies,
    )


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in values.items() if v is not None}
