"""The scaling configuration of a stack, read from its offline render (`python -m infra render`):
`manifests/` for the Deployments, their HPAs or ScaledObjects and the service's ConfigMap, and
`resources.json` for the managed node group (instance type, sizes) and the region. With
Karpenter's NodePools in the render, the node group is the system group and the NodePools (their
allowed instance types, weights, limits and consolidation delay) launch the service's nodes;
which pools each Deployment may use follows from its nodeSelector and tolerations.

A ScaledObject replaces the HPA of the same Deployment (KEDA adopts it), whether both are in the
render (a stack adopting its Pulumi HPAs has both) or the ScaledObject comes from an overlay
folder. `cpu_only` keeps only the CPU and memory metrics of each autoscaler: the HPAs before KEDA,
to compare with.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from agent_service.config import Settings

from infra import prices

from . import keda, scaling
from .cluster import NodeGroup
from .karpenter import NodePool
from .scaling import Autoscaler

TIERS = {"api": "agent-api", "worker": "agent-worker"}  # tier -> Deployment


@dataclass(frozen=True)
class Tier:
    """One Deployment: its pods' requests and limits, and what scales it."""

    deployment: str
    cpu_request_m: int
    memory_request_mib: float
    cpu_limit: float  # cores
    autoscaler: Autoscaler


@dataclass(frozen=True)
class Setup:
    """Everything the simulator takes from a render."""

    stack: str
    region: str
    api: Tier
    worker: Tier
    group: NodeGroup
    max_concurrent_sessions: int
    model_max_connections: int
    worker_concurrency: int
    pools: tuple[NodePool, ...] = ()  # Karpenter's NodePools; empty: Cluster Autoscaler
    placement: dict[str, tuple[str, ...]] | None = None  # tier -> NodePools its pods may use


def _setting(config: dict[str, str], name: str) -> int:
    # The ConfigMap's value, or the service's own default (agent_service.config.Settings).
    if name.upper() in config:
        return int(config[name.upper()])
    return int(Settings.model_fields[name].default)


def read_manifests(folder: Path) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def load(render: Path, overlay: Path | None = None, cpu_only: bool = False) -> Setup:
    """The setup of the render in `render` (with `overlay`'s ScaledObjects/HPAs on top; with
    `cpu_only`, their CPU and memory metrics only)."""
    manifests = read_manifests(render / "manifests")
    document = json.loads((render / "resources.json").read_text())
    scalers = _autoscalers(manifests)
    if overlay is not None:
        scalers.update(_autoscalers(read_manifests(overlay)))
    if cpu_only:
        scalers = {target: resources_only(a) for target, a in scalers.items()}
    by_kind = {(m["kind"], m["metadata"]["name"]): m for m in manifests}
    config = by_kind[("ConfigMap", "workload-config")]["data"]
    group = _node_group(document, config["AWS_REGION"])
    pools = [m for m in manifests if m["kind"] == "NodePool"]
    tiers = {}
    for tier, name in TIERS.items():
        if name not in scalers:
            raise ValueError(f"{render}: no HorizontalPodAutoscaler or ScaledObject for {name}")
        tiers[tier] = _tier(by_kind[("Deployment", name)], scalers[name])
    return Setup(
        stack=document["stack"],
        region=config["AWS_REGION"],
        api=tiers["api"],
        worker=tiers["worker"],
        group=group,
        max_concurrent_sessions=_setting(config, "max_concurrent_sessions"),
        model_max_connections=_setting(config, "model_max_connections"),
        worker_concurrency=_setting(config, "worker_concurrency"),
        pools=tuple(_node_pool(p, config["AWS_REGION"]) for p in pools),
        placement={
            tier: _placement(by_kind[("Deployment", name)], pools) for tier, name in TIERS.items()
        }
        if pools
        else None,
    )


def _node_pool(manifest: dict[str, Any], region: str) -> NodePool:
    spec = manifest["spec"]
    requirements = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
    names = requirements["node.kubernetes.io/instance-type"]["values"]
    return NodePool(
        name=manifest["metadata"]["name"],
        types=tuple(prices.instance_type(n) for n in names),
        prices={n: prices.on_demand_hourly(n, region) for n in names},
        weight=int(spec.get("weight", 0)),
        cpu_limit=scaling.quantity(spec["limits"]["cpu"]),
        memory_limit_mib=scaling.quantity(spec["limits"]["memory"]) / 1024**2,
        consolidate_after_s=_seconds(spec["disruption"]["consolidateAfter"]),
    )


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    if duration[-1] not in units:
        raise scaling.NotModelled(f"consolidateAfter {duration!r}")
    return float(duration[:-1]) * units[duration[-1]]


def _placement(deployment: dict[str, Any], pools: list[dict[str, Any]]) -> tuple[str, ...]:
    """The NodePools whose labels the pods select and whose taints they all tolerate."""
    pod = deployment["spec"]["template"]["spec"]
    selector = pod.get("nodeSelector") or {}
    tolerations = pod.get("tolerations") or []

    def tolerated(taint: dict[str, str]) -> bool:
        return any(
            (t.get("operator") == "Exists" and t.get("key") in (None, taint["key"]))
            or (t.get("key") == taint["key"] and t.get("value") == taint.get("value"))
            for t in tolerations
        )

    return tuple(
        p["metadata"]["name"]
        for p in pools
        if selector.items() <= p["spec"]["template"]["metadata"].get("labels", {}).items()
        and all(tolerated(t) for t in p["spec"]["template"]["spec"].get("taints", []))
    )


def _autoscalers(manifests: list[dict[str, Any]]) -> dict[str, Autoscaler]:
    found: dict[str, Autoscaler] = {}
    for kind, convert in (("HorizontalPodAutoscaler", scaling.from_hpa),
                          ("ScaledObject", keda.from_scaledobject)):  # fmt: skip
        for manifest in manifests:
            if manifest["kind"] == kind:
                autoscaler = convert(manifest)
                found[autoscaler.target] = autoscaler  # a ScaledObject wins: it comes second
    return found


def resources_only(autoscaler: Autoscaler) -> Autoscaler:
    """`autoscaler` scaling on CPU and memory only (no External metric, no scale to zero)."""
    metrics = tuple(m for m in autoscaler.metrics if isinstance(m, scaling.ResourceMetric))
    if not metrics:
        raise scaling.NotModelled(f"{autoscaler.source}: no cpu or memory metric for --cpu-only")
    return replace(
        autoscaler,
        source=f"{autoscaler.source} (cpu/memory only)",
        metrics=metrics,
        scale_to_zero=False,
    )


def _tier(deployment: dict[str, Any], autoscaler: Autoscaler) -> Tier:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    if "cpu" not in requests or "memory" not in requests:
        raise ValueError(f"{deployment['metadata']['name']}: no cpu/memory requests to scale on")
    cpu_limit = scaling.quantity(limits["cpu"]) if "cpu" in limits else 1.0
    return Tier(
        deployment=deployment["metadata"]["name"],
        cpu_request_m=round(scaling.quantity(requests["cpu"]) * 1000),
        memory_request_mib=scaling.quantity(requests["memory"]) / 1024**2,
        cpu_limit=min(cpu_limit, 1.0),  # one Python process uses one core at most
        autoscaler=autoscaler,
    )


def _node_group(document: dict[str, Any], region: str) -> NodeGroup:
    groups = [r for r in document["resources"] if r["type"] == "eks:index:ManagedNodeGroup"]
    if len(groups) != 1:
        raise scaling.NotModelled(f"{len(groups)} managed node groups (one is modelled)")
    inputs = groups[0]["inputs"]
    name = inputs["instanceTypes"][0]
    sizes = inputs["scalingConfig"]
    return NodeGroup(
        instance=prices.instance_type(name),
        min_size=int(sizes["minSize"]),
        max_size=int(sizes["maxSize"]),
        desired_size=int(sizes["desiredSize"]),
        price_per_hour=prices.on_demand_hourly(name, region),
    )


def render_stack(
    stack: str, root: Path, overlay: Path | None = None, cpu_only: bool = False
) -> Setup:
    """Render `stack` offline (as `python -m infra render` does) and read its setup."""
    from infra.offline.render import render

    with tempfile.TemporaryDirectory(prefix=f"autoscale-{stack}-") as out:
        render(stack, Path(out), root)
        return load(Path(out), overlay, cpu_only)
