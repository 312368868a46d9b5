"""What a chat's CPU means for sizing and cost: chats per second per vCPU, and the service's
CPU dollars per million chats on the nodes prod's API pods run on (Karpenter's `api` NodePool:
the allowed type with the cheapest vCPU, priced from infra/data/prices.json by infra/prices.py).

Service CPU only: PostgreSQL, Redis, the model and the nodes' idle headroom are priced elsewhere
(`python -m infra cost`). A pod is one process, so a vCPU is also what one pod can use.
"""

from __future__ import annotations

from typing import Any

from infra.components.karpenter_pools import API_INSTANCE_TYPES
from infra.prices import instance_type, load_prices, on_demand_hourly

REGION = "us-east-1"  # the price list's region


def vcpu_hourly(node_type: str) -> float:
    """USD per vCPU-hour of `node_type`, on demand."""
    return on_demand_hourly(node_type, REGION) / instance_type(node_type).vcpu


def prod_node_type() -> str:
    """The API pool's type with the cheapest vCPU (the first listed among equals): the type
    Karpenter's price-ordered choice leans to for prod's API pods."""
    return min(API_INSTANCE_TYPES, key=vcpu_hourly)


def figures(chat_cpu_us: float, node_type: str | None = None) -> dict[str, Any]:
    """Sizing figures for a chat that costs `chat_cpu_us` microseconds of service CPU."""
    node_type = node_type or prod_node_type()
    node_hourly = on_demand_hourly(node_type, REGION)
    vcpus = instance_type(node_type).vcpu
    vcpu_second = node_hourly / vcpus / 3600
    return {
        "chats_per_second_per_vcpu": round(1e6 / chat_cpu_us),
        # CPU seconds per million chats = chat_cpu_us.
        "service_cpu_usd_per_million_chats": round(vcpu_second * chat_cpu_us, 4),
        "node_type": node_type,
        "node_usd_per_hour": round(node_hourly, 4),
        "node_vcpus": vcpus,
        "estimate": load_prices().is_estimate(f"ec2.{node_type}"),
    }
