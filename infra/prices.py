"""The one price list (`infra/data/prices.json`) and its one loader, for `python -m infra cost`
and the autoscaling simulator (`bench.autoscale`).

The file holds list rates with their source and unit (`rates`: EC2 instance-hours from the AWS
Price List API by way of Karpenter's generated table, and the other services' rates), what is
billed by use and left out, and per instance type its vCPUs, memory and the pods the VPC CNI
gives it (nodeadm's ENIs x (IPv4 per ENI - 1) + 2). Every figure names its upstream source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "prices.json"


class CostError(LookupError):
    """Something the price list cannot price."""


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


@dataclass(frozen=True)
class Prices:
    """The pinned price list."""

    as_of: str
    region: str
    hours_per_month: int
    rates: dict[str, dict[str, Any]]
    left_out: list[str]

    def monthly(self, rate: str, quantity: float = 1.0) -> float:
        """`quantity` units of `rate` for one month."""
        if rate not in self.rates:
            raise CostError(f"no price for {rate} in {DATA.name}; add it with its source")
        entry = self.rates[rate]
        per_month = {"hour": self.hours_per_month, "month": 1, "GB-month": 1}[entry["per"]]
        return entry["usd"] * per_month * quantity

    def is_estimate(self, rate: str) -> bool:
        """Whether no source confirmed the rate."""
        return bool(self.rates[rate]["estimate"])


@cache
def _data() -> dict[str, Any]:
    return json.loads(DATA.read_text())


def load_prices() -> Prices:
    """The price list."""
    data = _data()
    return Prices(
        data["as_of"], data["region"], data["hours_per_month"], data["rates"], data["left_out"]
    )


def on_demand_hourly(instance_type: str, region: str) -> float:
    """USD per instance-hour, on demand, Linux; a clear error for what the list lacks."""
    data = _data()
    if region != data["region"]:
        raise ValueError(f"no prices for region {region!r} in {DATA.name}; have: {data['region']}")
    rate = data["rates"].get(f"ec2.{instance_type}")
    if rate is None:
        known = sorted(r.removeprefix("ec2.") for r in data["rates"] if r.startswith("ec2."))
        raise ValueError(
            f"no price for {instance_type!r} in {region} in {DATA.name}; have: {known}"
        )
    return float(rate["usd"])


def instance_type(name: str) -> InstanceType:
    """vCPUs, memory and ENIs of `name`; a clear error for a type the list lacks."""
    types = _data()["instance_types"]
    if name not in types:
        known = sorted(types)
        raise ValueError(f"no facts for instance type {name!r} in {DATA.name}; have: {known}")
    return InstanceType(name=name, **types[name])
