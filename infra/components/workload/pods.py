"""Pod templates of the agent service: one hardened shape for the API, the worker and the Job.

Every pod runs as the image's numeric non-root user with a read-only root filesystem, no
privilege escalation, no capabilities and the runtime's default seccomp profile - what the
namespace's `restricted` Pod Security Standard enforces - and writes only to an emptyDir at
/tmp. The Kubernetes API token is not mounted (the service never calls the API); the IRSA
webhook still projects the AWS web-identity token for the service account's role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra import contract

APP_NAME = "agent-service"
NODE_POOL_LABEL = "agent-platform/pool"
NODE_POOL = "general"
# Karpenter's `workers` NodePool (spot allowed) carries this taint; only worker pods tolerate it.
# They do not carry karpenter.sh/do-not-disrupt: a worker lives as long as its Deployment, so the
# annotation would pin its node forever (no consolidation, no drift); on SIGTERM the worker
# finishes or hands back its tasks instead (README: How it scales).
WORKER_TAINT = {"key": "agent-platform/workers", "value": "true", "effect": "NoSchedule"}
TOLERATIONS = {"worker": [{**WORKER_TAINT, "operator": "Equal"}]}
TMP_SIZE_LIMIT = "256Mi"
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"

# Probe timings (startup: up to 2 minutes to come up before liveness takes over).
STARTUP_PROBE = {"periodSeconds": 5, "failureThreshold": 24, "timeoutSeconds": 2}
LIVENESS_PROBE = {
    "initialDelaySeconds": 30, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3,
}  # fmt: skip
READINESS_PROBE = {
    "initialDelaySeconds": 5, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 2,
}  # fmt: skip


def selector(component: str) -> dict[str, str]:
    """The labels that select one component's pods (never change them: selectors are immutable)."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": component}


def labels(component: str, version: str | None = None) -> dict[str, str]:
    """Recommended labels of one component's objects."""
    extra = {"app.kubernetes.io/version": version} if version else {}
    return {
        **selector(component),
        "app.kubernetes.io/part-of": "agent-platform",
        "app.kubernetes.io/managed-by": "pulumi",
        **extra,
    }


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def spec(self) -> dict[str, Any]:
        """The container's `resources`."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


def container_security_context() -> dict[str, Any]:
    """Non-root, read-only, no escalation, no capabilities."""
    return {
        "runAsNonRoot": True,
        "runAsUser": contract.RUN_AS_USER,
        "runAsGroup": contract.RUN_AS_GROUP,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    """The pod-level half of the restricted profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": contract.RUN_AS_USER,
        "runAsGroup": contract.RUN_AS_GROUP,
        "fsGroup": contract.RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container(
    name: str,
    image: pulumi.Input[str],
    command: Sequence[str],
    resources: Resources,
    env_from: Sequence[Mapping[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """One hardened container writing only to /tmp."""
    return {
        "name": name,
        "image": image,
        # The reference is immutable (a content tag with its digest): pull once per node.
        "imagePullPolicy": "IfNotPresent",
        "command": list(command),
        "envFrom": list(env_from),
        "resources": resources.spec(),
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
        **extra,
    }


# Prometheus scrapes both API and worker here; neither the Service nor the ALB reaches it.
METRICS_CONTAINER_PORT = {
    "name": "metrics",
    "containerPort": contract.METRICS_PORT,
    "protocol": "TCP",
}


def api_container_extras() -> dict[str, Any]:
    """Port, probes and the preStop drain of the API container."""

    def http_get(path: str) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http", "scheme": "HTTP"}}

    return {
        "ports": [
            {"name": "http", "containerPort": contract.SERVICE_PORT, "protocol": "TCP"},
            METRICS_CONTAINER_PORT,
        ],
        "startupProbe": {**http_get(contract.HEALTH_PATH), **STARTUP_PROBE},
        "livenessProbe": {**http_get(contract.HEALTH_PATH), **LIVENESS_PROBE},
        "readinessProbe": {**http_get(contract.READY_PATH), **READINESS_PROBE},
        # Keep serving while the load balancer controller deregisters the pod's IP; the
        # kubelet's own sleep action needs no shell in the image.
        "lifecycle": {"preStop": {"sleep": {"seconds": contract.PRESTOP_SLEEP_SECONDS}}},
    }


# The worker serves only its metrics port. Readiness asks whether it consumes its queue (the
# service's readiness module reads what the loop last read and the error it last met), so a
# rollout keeps the old workers until the new ones consume. Liveness asks whether its loop still
# turns: the
# loop touches a heartbeat file under /tmp (also while Redis is down, so a Redis failover never
# restarts workers), and a loop that hangs is restarted within ~2 minutes.
WORKER_READINESS_PROBE = {
    "initialDelaySeconds": 5, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3,
}  # fmt: skip
WORKER_LIVENESS_PROBE = {
    "initialDelaySeconds": 30, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3,
}  # fmt: skip


def worker_container_extras() -> dict[str, Any]:
    """Metrics port, queue-reachability readiness and heartbeat liveness of the worker."""
    return {
        "ports": [METRICS_CONTAINER_PORT],
        "readinessProbe": {
            "exec": {"command": list(contract.COMMANDS["worker_readiness"])},
            **WORKER_READINESS_PROBE,
        },
        "livenessProbe": {
            "exec": {"command": list(contract.COMMANDS["worker_liveness"])},
            **WORKER_LIVENESS_PROBE,
        },
    }


def pod_spec(
    service_account: str,
    containers: Sequence[Mapping[str, Any]],
    *,
    spread: Mapping[str, str] | None = None,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    """A pod on the general node pool; `spread` spreads pods with these labels over zones."""
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "nodeSelector": {NODE_POOL_LABEL: NODE_POOL},
        "terminationGracePeriodSeconds": contract.TERMINATION_GRACE_PERIOD_SECONDS,
        "restartPolicy": restart_policy,
        "containers": list(containers),
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}],
    }
    if spread is not None:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": key,
                # ScheduleAnyway: one node group spans the zones, so the autoscaler cannot add
                # a node in a chosen zone; a hard constraint could leave pods Pending.
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(spread)},
                # Spread each rollout's pods on their own, not old and new together.
                "matchLabelKeys": ["pod-template-hash"],
            }
            for key in (ZONE_KEY, HOST_KEY)
        ]
    return spec


def hpa_spec(
    target: str, min_replicas: int, max_replicas: int, cpu_target: int, memory_target: int
) -> dict[str, Any]:
    """autoscaling/v2 on average CPU and memory utilisation (percent of the requests)."""

    def utilisation(resource: str, percent: int) -> dict[str, Any]:
        return {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": percent},
            },
        }

    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [utilisation("cpu", cpu_target), utilisation("memory", memory_target)],
        "behavior": {
            # Up fast (double, or 4 pods, per minute), down slowly after 5 calm minutes, so a
            # bursty agent load does not flap.
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 60},
                    {"type": "Pods", "value": 4, "periodSeconds": 60},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            },
        },
    }


def pdb_spec(component: str) -> dict[str, Any]:
    """One pod at a time may be evicted: never blocks a node drain, even with one replica."""
    return {
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector(component)},
        # A crash-looping pod must not hold a drain hostage.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def deployment_spec(
    component: str,
    container: Mapping[str, Any],
    service_account: str,
    version: str | None,
) -> dict[str, Any]:
    """A Deployment spec whose replica count the autoscaler owns (`replicas` is never set)."""
    return {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(component)},
        # Never below the current count during a rollout: surge first, then retire.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        },
        "template": {
            "metadata": {
                "labels": labels(component, version),
                "annotations": {"kubectl.kubernetes.io/default-container": component},
            },
            "spec": {
                **pod_spec(service_account, [container], spread=selector(component)),
                **({"tolerations": TOLERATIONS[component]} if component in TOLERATIONS else {}),
            },
        },
    }
