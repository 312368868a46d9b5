"""NetworkPolicies of the service's namespace (enforced by the VPC CNI's network policy agent).

Everything is denied, then opened by name: DNS to CoreDNS for every pod; the API accepts 8000
from the load balancer's subnets only (the ALB sends to pod IPs from its nodes there; in a
shared VPC other stacks' pods sit in the same private subnets and must not reach it; kubelet
probes come from the node's own IP, which the VPC CNI's policy agent always admits); API and
worker serve their metrics port to the private subnets (Prometheus's managed scraper has its
ENIs there; security groups narrow it) and reach PostgreSQL and Redis in the database subnets
and HTTPS anywhere (STS, Secrets Manager, model endpoints) except the instance metadata service;
the migration Job reaches only PostgreSQL and HTTPS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra import contract
from infra.components.workload.pods import selector

IMDS = "169.254.169.254/32"
POSTGRES_PORT = 5432
REDIS_PORT = 6379


def _ports(*ports: int, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": p} for p in ports]


def _components(*components: str) -> dict[str, Any]:
    name = selector(components[0])["app.kubernetes.io/name"]
    return {
        "matchLabels": {"app.kubernetes.io/name": name},
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": list(components),
            }
        ],
    }


def _https_anywhere() -> dict[str, Any]:
    return {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [IMDS]}}],
        "ports": _ports(443),
    }


def _to_blocks(cidrs: Sequence[str], *ports: int) -> dict[str, Any]:
    return {"to": [{"ipBlock": {"cidr": c}} for c in cidrs], "ports": _ports(*ports)}


def policies(
    load_balancer_cidrs: Sequence[str],
    scraper_cidrs: Sequence[str],
    database_cidrs: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """name -> NetworkPolicy spec."""
    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": _ports(53, protocol="UDP") + _ports(53),
                }
            ],
        },
        "api-ingress": {
            "podSelector": {"matchLabels": selector("api")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": c}} for c in load_balancer_cidrs],
                    "ports": _ports(contract.SERVICE_PORT),
                }
            ],
        },
        # Prometheus's managed scraper runs outside the cluster, on ENIs in the private subnets.
        "metrics-ingress": {
            "podSelector": _components("api", "worker"),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": c}} for c in scraper_cidrs],
                    "ports": _ports(contract.METRICS_PORT),
                }
            ],
        },
        "app-egress": {
            "podSelector": _components("api", "worker"),
            "policyTypes": ["Egress"],
            "egress": [
                _to_blocks(database_cidrs, POSTGRES_PORT, REDIS_PORT),
                _https_anywhere(),
            ],
        },
        "migrate-egress": {
            "podSelector": {"matchLabels": selector("migrate")},
            "policyTypes": ["Egress"],
            "egress": [_to_blocks(database_cidrs, POSTGRES_PORT), _https_anywhere()],
        },
    }
