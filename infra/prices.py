"""EC2 facts the cost and capacity tools share, from one data file (`infra/data/aws-prices.json`,
every figure with its upstream source): on-demand prices per region, and per instance type its
vCPUs, memory and the pods the VPC CNI gives it (nodeadm's ENIs x (IPv4 per ENI - 1) + 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "aws-prices.json"


@dataclass(frozen=True)
class InstanceType:
    """What a node of this type offers before Kubernetes reserves its share."""

    name: str
    vcpu: int
    memory_mib: int
    enis: int
    ipv4_per_eni: int

    @property
    def max_pods(self) -> int:
        return self.enis * (self.ipv4_per_eni - 1) + 2


@cache
def _data() -> dict[str, Any]:
    return json.loads(DATA.read_text())


def on_demand_hourly(instance_type: str, region: str) -> float:
    """USD per instance-hour, on demand, Linux; a clear error for what the table lacks."""
    regions = _data()["on_demand_usd_per_hour"]
    if region not in regions:
        raise ValueError(f"no prices for region {region!r} in {DATA.name}; have: {sorted(regions)}")
    prices = regions[region]
    if instance_type not in prices:
        raise ValueError(
            f"no price for {instance_type!r} in {region} in {DATA.name}; have: {sorted(prices)}"
        )
    return float(prices[instance_type])


def instance_type(name: str) -> InstanceType:
    """vCPUs, memory and ENIs of `name`; a clear error for a type the table lacks."""
    types = _data()["instance_types"]
    if name not in types:
        known = sorted(types)
        raise ValueError(f"no facts for instance type {name!r} in {DATA.name}; have: {known}")
    return InstanceType(name=name, **types[name])
