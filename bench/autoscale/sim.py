"""The simulation loop: each second the load of the profile meets the pods that are ready; every
15 s each HPA syncs (metrics-server's CPU averaged over the last 15 s, External metrics read at
the sync, as KEDA's metrics server answers the HPA); every 10 s the node autoscaler runs:
Karpenter (bench/autoscale/karpenter.py) when the render has NodePools, else Cluster Autoscaler.

The run starts from a warm-up (`warmup_s`, not recorded) at the profile's first load, so the
replicas and nodes at t = 0 are what that load settles to.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .cluster import Cluster
from .figures import PodFigures
from .hpa import SYNC_PERIOD_S, Controller, PodUsage, external_replicas, resource_replicas
from .karpenter import NODE_START_S, KarpenterCluster
from .profiles import Load, Profile
from .rendered import Setup, Tier
from .scaling import ExternalMetric, ResourceMetric
from .workload import ApiSettings, ApiState, Queue, api_step

COLUMNS = (
    "t", "chats_per_s", "model_latency_s", "tasks_per_s",
    "api_replicas", "api_ready", "worker_replicas", "worker_ready", "nodes", "nodes_ready",
    "pending_pods", "served_per_s", "refused_per_s", "latency_s", "in_flight_per_pod",
    "api_cpu_percent", "worker_cpu_percent", "tasks_waiting", "tasks_running",
    "tasks_finished_per_s", "cost_usd",
)  # fmt: skip


CA_NODE_START_S = 120.0


@dataclass(frozen=True)
class Options:
    """Timings the render does not say; defaults are typical EKS figures, not measurements."""

    pod_start_s: float = 20.0  # scheduled to Ready: image pull on a warm node, startup probe
    # Decision to a Ready node: Cluster Autoscaler (through the node group's ASG, EC2, join)
    # 120 s; Karpenter (EC2 Fleet directly) 60 s; None: the autoscaler's own figure.
    node_start_s: float | None = None
    warmup_s: float = 900.0
    dt: float = 1.0
    metrics_window_s: float = 15.0  # metrics-server resolution


@dataclass
class _Scaled:
    tier: str
    spec: Tier
    controller: Controller
    last_active: float = 0.0


@dataclass
class Result:
    """The recorded timeline (one row per second) and the run's figures."""

    setup: Setup
    profile: Profile
    options: Options
    figures: PodFigures
    rows: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in COLUMNS})

    def summary(self) -> dict[str, Any]:
        r, dt = self.rows, self.options.dt
        chats = sum(r["chats_per_s"]) * dt
        refused = sum(r["refused_per_s"]) * dt
        served = sum(r["served_per_s"]) * dt
        latency = sum(s * lat for s, lat in zip(r["served_per_s"], r["latency_s"], strict=True))
        backlog, longest = 0.0, 0.0
        for waiting in r["tasks_waiting"]:
            backlog = backlog + dt if waiting >= 1 else 0.0
            longest = max(longest, backlog)
        return {
            "chats": round(chats),
            "refused": round(refused),
            "refused_percent": round(100 * refused / chats, 2) if chats else 0.0,
            "peak_refused_per_s": round(max(r["refused_per_s"]), 1),
            "mean_latency_s": round(latency / served, 3) if served else None,
            "max_latency_s": round(max(r["latency_s"]), 3),
            "api_replicas": (min(r["api_replicas"]), max(r["api_replicas"])),
            "worker_replicas": (min(r["worker_replicas"]), max(r["worker_replicas"])),
            "nodes": (min(r["nodes"]), max(r["nodes"])),
            "max_pending_pods": max(r["pending_pods"]),
            "tasks": round(sum(r["tasks_per_s"]) * dt),
            "tasks_finished": round(sum(r["tasks_finished_per_s"]) * dt),
            "peak_tasks_waiting": round(max(r["tasks_waiting"])),
            "longest_backlog_s": longest,
            "tasks_waiting_at_end": round(r["tasks_waiting"][-1]),
            "node_hours": round(sum(r["nodes"]) * dt / 3600, 2),
            "cost_usd": round(r["cost_usd"][-1], 2),
        }


def run(
    setup: Setup, profile: Profile, figures: PodFigures, options: Options = Options()
) -> Result:
    """Replay `profile` through `setup`'s scaling configuration."""
    dt = options.dt
    cluster = _cluster(setup, options)
    start = -options.warmup_s
    cluster.add_nodes(start, setup.group.desired_size, ready_at=start)
    cluster.place_system_pods()
    scaled = [
        _Scaled("api", setup.api, setup.api.autoscaler.controller(), start),
        _Scaled("worker", setup.worker, setup.worker.autoscaler.controller(), start),
    ]
    for s in scaled:
        _scale(cluster, s, s.spec.autoscaler.min_replicas, start)
    if isinstance(cluster, KarpenterCluster):
        cluster.provision(start, ready_at=start)  # the minimum replicas' nodes exist already
    cluster.schedule(start)
    for pod in cluster.pods:
        pod.ready_at = start if pod.node is not None else None  # running before the run
    api_settings = ApiSettings(
        cores=setup.api.cpu_limit,
        chat_cap=min(setup.max_concurrent_sessions, setup.model_max_connections),
    )
    queue = Queue.empty(setup.worker_concurrency)
    window = max(1, round(options.metrics_window_s / dt))
    cpu = {"api": deque(maxlen=window), "worker": deque(maxlen=window)}
    result = Result(setup, profile, options, figures)
    ready_workers_before, cost = 0, 0.0
    steps = round((options.warmup_s + profile.duration_s) / dt)
    for step in range(steps):
        now = start + step * dt
        load = profile.at(max(now, 0.0))
        cluster.step(now, dt)
        ready = {
            tier: sum(p.ready(now) for p in cluster.pods_of(tier)) for tier in ("api", "worker")
        }
        if ready["worker"] < ready_workers_before:
            queue.hand_back(ready_workers_before - ready["worker"], ready_workers_before)
        ready_workers_before = ready["worker"]
        api = api_step(load, ready["api"], api_settings, figures)
        queue.step(load, ready["worker"], dt, figures)
        cpu["api"].append(api.cpu_per_pod)
        cpu["worker"].append(queue.cpu_per_worker)
        if round(now / dt) % round(SYNC_PERIOD_S / dt) == 0:
            observed = _signals(api, ready["api"], load.chats_per_s, queue)
            for s in scaled:
                usage = {
                    "cpu": sum(cpu[s.tier]) / len(cpu[s.tier]),
                    "memory": api.memory_per_pod if s.tier == "api" else figures.base_rss_mib,
                }
                _sync(cluster, s, now, usage, observed, options)
        if now >= 0:
            cost += cluster.cost_per_hour() * dt / 3600
            _record(result.rows, now, load, cluster, ready, api, queue, setup, cost)
    return result


def _cluster(setup: Setup, options: Options) -> Cluster:
    """Karpenter's model when the render has NodePools, else Cluster Autoscaler's."""
    if setup.pools:
        start = options.node_start_s if options.node_start_s is not None else NODE_START_S
        return KarpenterCluster(setup.group, options.pod_start_s, start, pools=setup.pools,
                                placement=setup.placement or {})  # fmt: skip
    start = options.node_start_s if options.node_start_s is not None else CA_NODE_START_S
    return Cluster(setup.group, options.pod_start_s, start)


def _signals(api: ApiState, ready: int, chats_per_s: float, queue: Queue) -> dict[str, float]:
    return {
        "api_chats_in_flight": api.in_flight_per_pod * ready,
        "api_requests_per_s": chats_per_s if ready else 0.0,
        "api_requests_per_target_per_s": chats_per_s / ready if ready else 0.0,
        **queue.signals(),
    }


def _scale(cluster: Cluster, s: _Scaled, replicas: int, now: float) -> None:
    cluster.scale(s.tier, replicas, s.spec.cpu_request_m, s.spec.memory_request_mib, now)


def _sync(
    cluster: Cluster,
    s: _Scaled,
    now: float,
    usage: dict[str, float],
    observed: dict[str, float],
    options: Options,
) -> None:
    autoscaler = s.spec.autoscaler
    pods = cluster.pods_of(s.tier)
    current = len(pods)
    externals = [m for m in autoscaler.metrics if isinstance(m, ExternalMetric)]
    if autoscaler.scale_to_zero:
        if any(m.value(observed) > m.activation for m in externals):
            s.last_active = now
        if current == 0 and s.last_active == now:
            _scale(cluster, s, 1, now)  # KEDA activates the target; the HPA takes it from there
            return
        if current > 0 and now - s.last_active >= autoscaler.cooldown_s:
            _scale(cluster, s, 0, now)
            return
    ready = [p for p in pods if p.ready(now)]
    proposals = []
    for metric in autoscaler.metrics:
        if isinstance(metric, ResourceMetric):
            request = (
                s.spec.cpu_request_m / 1000
                if metric.resource == "cpu"
                else s.spec.memory_request_mib
            )
            samples = [
                PodUsage(
                    _has_metric(p, now, metric.resource, options), usage[metric.resource], request
                )
                for p in pods
            ]
            proposals.append(
                resource_replicas(
                    current, samples, metric.target, metric.target_type, autoscaler.behavior
                )
            )
        else:
            proposals.append(
                external_replicas(
                    current, len(ready), metric.value(observed), metric.target, metric.target_type,
                    autoscaler.behavior,
                )
            )  # fmt: skip
    desired = s.controller.reconcile(now, current, proposals)
    if desired != current:
        _scale(cluster, s, desired, now)


def _has_metric(pod: Any, now: float, resource: str, options: Options) -> bool:
    # CPU: a pod counts once a metric sample was taken after it became ready.
    if not pod.ready(now):
        return False
    return resource != "cpu" or now - pod.ready_at >= options.metrics_window_s


def _record(
    rows: dict[str, list[float]],
    now: float,
    load: Load,
    cluster: Cluster,
    ready: dict[str, int],
    api: ApiState,
    queue: Queue,
    setup: Setup,
    cost: float,
) -> None:
    api_pods, worker_pods = cluster.pods_of("api"), cluster.pods_of("worker")
    values = {
        "t": now,
        "chats_per_s": load.chats_per_s,
        "model_latency_s": load.model_latency_s,
        "tasks_per_s": load.tasks_per_s,
        "api_replicas": len(api_pods),
        "api_ready": ready["api"],
        "worker_replicas": len(worker_pods),
        "worker_ready": ready["worker"],
        "nodes": len(cluster.nodes),
        "nodes_ready": sum(n.ready_at <= now for n in cluster.nodes),
        "pending_pods": len(cluster.pending()),
        "served_per_s": api.served_per_s,
        "refused_per_s": api.refused_per_s,
        "latency_s": api.latency_s,
        "in_flight_per_pod": api.in_flight_per_pod,
        "api_cpu_percent": 100 * api.cpu_per_pod * 1000 / setup.api.cpu_request_m,
        "worker_cpu_percent": 100 * queue.cpu_per_worker * 1000 / setup.worker.cpu_request_m,
        "tasks_waiting": queue.waiting,
        "tasks_running": queue.running,
        "tasks_finished_per_s": queue.finished_per_s,
        "cost_usd": cost,
    }
    for key in COLUMNS:
        rows[key].append(values[key])
