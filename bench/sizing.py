"""What a chat's CPU means for sizing and cost: chats per second per vCPU, and the service's
CPU dollars per million chats on prod's node type (its on-demand price from infra/ops/prices.json
through the cost command's loader, its vCPUs from infra/data/aws-prices.json).

Service CPU only: PostgreSQL, Redis, the model and the nodes' idle headroom are priced elsewhere
(`python -m infra cost`). A pod is one process, so a vCPU is also what one pod can use.
"""

from __future__ import annotations

from typing import Any

from infra.config.sections.cluster import ClusterConfig
from infra.ops.cost import load_prices
from infra.prices import instance_type


def prod_node_type() -> str:
    """The first of prod's nodeInstanceTypes (a section's field default is prod's)."""
    return ClusterConfig.model_fields["node_instance_types"].default[0]


def figures(chat_cpu_us: float, node_type: str | None = None) -> dict[str, Any]:
    """Sizing figures for a chat that costs `chat_cpu_us` microseconds of service CPU."""
    node_type = node_type or prod_node_type()
    prices = load_prices()
    node_hourly = prices.monthly(f"ec2.{node_type}") / prices.hours_per_month
    vcpus = instance_type(node_type).vcpu
    vcpu_second = node_hourly / vcpus / 3600
    return {
        "chats_per_second_per_vcpu": round(1e6 / chat_cpu_us),
        # CPU seconds per million chats = chat_cpu_us.
        "service_cpu_usd_per_million_chats": round(vcpu_second * chat_cpu_us, 4),
        "node_type": node_type,
        "node_usd_per_hour": round(node_hourly, 4),
        "node_vcpus": vcpus,
        "estimate": prices.is_estimate(f"ec2.{node_type}"),
    }
