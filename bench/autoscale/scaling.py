"""What scales a Deployment, read from its manifest: an HPA, or the HPA KEDA makes of a
ScaledObject (bench/autoscale/keda.py). Each metric says where the simulator reads its value:
Resource metrics from the pods' CPU and memory, External metrics from a named signal of the
simulated system (`SIGNALS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .hpa import Behavior, Controller

# What an External metric can read from the simulated system, per sync.
SIGNALS = {
    "api_chats_in_flight": "chats in flight, summed over the API pods",
    "api_requests_per_s": "requests per second reaching the API pods",
    "api_requests_per_target_per_s": "requests per second per ready API pod (ALB target)",
    "stream_lag:<stream>": "entries of <stream> not yet delivered to the consumer group",
    "stream_pending:<stream>": "entries of <stream> delivered and not yet acknowledged",
    "stream_length:<stream>": "XLEN of <stream> (here: lag + pending; trimmed history ignored)",
}


class NotModelled(ValueError):
    """A scaling feature the simulator does not model (the message names it)."""


_UNITS = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("500m", "1", "512Mi") as a number of base units."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value).strip())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"{value!r} is not a quantity this simulator reads")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "m" else number * _UNITS[unit]


@dataclass(frozen=True)
class Signal:
    """One value of the simulated system, times a scale (e.g. a per-minute sum)."""

    key: str
    scale: float = 1.0

    def read(self, observed: Mapping[str, float]) -> float:
        if self.key not in observed:
            raise NotModelled(f"signal {self.key!r} is not simulated; known: {sorted(observed)}")
        return observed[self.key] * self.scale


@dataclass(frozen=True)
class ResourceMetric:
    """cpu or memory: target Utilization (percent of requests) or AverageValue (cores, MiB)."""

    resource: str
    target_type: str
    target: float

    @property
    def name(self) -> str:
        return self.resource


@dataclass(frozen=True)
class ExternalMetric:
    """An External metric: one signal, or KEDA's composite of named triggers."""

    name: str
    target_type: str  # AverageValue | Value
    target: float
    signal: Signal | None = None
    formula: Callable[[Mapping[str, float]], float] | None = None
    inputs: Mapping[str, Signal] = field(default_factory=dict)
    activation: float = 0.0  # KEDA: active above this value

    def value(self, observed: Mapping[str, float]) -> float:
        if self.formula is not None:
            return self.formula({n: s.read(observed) for n, s in self.inputs.items()})
        assert self.signal is not None
        return self.signal.read(observed)


Metric = ResourceMetric | ExternalMetric


@dataclass(frozen=True)
class Autoscaler:
    """The HPA (and, for a ScaledObject, KEDA's activation) of one Deployment."""

    source: str  # e.g. "HorizontalPodAutoscaler agent-api"
    target: str  # the Deployment it scales
    min_replicas: int
    max_replicas: int
    behavior: Behavior
    metrics: tuple[Metric, ...]
    scale_to_zero: bool = False  # KEDA minReplicaCount 0: KEDA deactivates to 0 replicas
    cooldown_s: int = 300  # KEDA: inactive this long before scaling to zero

    def controller(self) -> Controller:
        return Controller(self.min_replicas, self.max_replicas, self.behavior)

    def describe(self) -> list[str]:
        lines = [f"{self.source}: {self.target} {self.min_replicas}..{self.max_replicas}"]
        for metric in self.metrics:
            if isinstance(metric, ResourceMetric):
                unit = "%" if metric.target_type == "Utilization" else ""
                lines.append(
                    f"  Resource {metric.resource} {metric.target_type} {metric.target:g}{unit}"
                )
            else:
                reads = ", ".join(metric.inputs) or (metric.signal.key if metric.signal else "")
                lines.append(
                    f"  External {metric.name} {metric.target_type} {metric.target:g} <- {reads}"
                )
        return lines


def _resource_target(resource: str, target: dict[str, Any]) -> ResourceMetric:
    kind = target["type"]
    if kind == "Utilization":
        return ResourceMetric(resource, kind, float(target["averageUtilization"]))
    if kind == "AverageValue":
        amount = quantity(target["averageValue"])
        return ResourceMetric(resource, kind, amount / 1024**2 if resource == "memory" else amount)
    raise NotModelled(f"Resource {resource} target type {kind!r}")


# An HPA without metrics scales on 80% CPU (the API's default).
_DEFAULT_HPA_METRIC = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
}


def from_hpa(obj: dict[str, Any]) -> Autoscaler:
    """An autoscaling/v2 HorizontalPodAutoscaler manifest."""
    spec = obj["spec"]
    name = obj["metadata"]["name"]
    metrics: list[Metric] = []
    for metric in spec.get("metrics") or [_DEFAULT_HPA_METRIC]:
        if metric["type"] == "Resource":
            resource = metric["resource"]
            if resource["name"] not in ("cpu", "memory"):
                raise NotModelled(f"HPA {name}: Resource metric {resource['name']!r}")
            metrics.append(_resource_target(resource["name"], resource["target"]))
        elif metric["type"] == "External":
            external = metric["external"]
            key = external["metric"]["name"]
            target = external["target"]
            amount = target.get("averageValue", target.get("value"))
            metrics.append(ExternalMetric(key, target["type"], quantity(amount), Signal(key)))
        else:
            raise NotModelled(f"HPA {name}: {metric['type']} metrics (Resource, External are)")
    return Autoscaler(
        source=f"HorizontalPodAutoscaler {name}",
        target=spec["scaleTargetRef"]["name"],
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        behavior=Behavior.from_spec(spec.get("behavior")),
        metrics=tuple(metrics),
    )
