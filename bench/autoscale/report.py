"""What a run prints (its configuration, a timeline, the figures) and plots (one PNG)."""

from __future__ import annotations

from pathlib import Path

from .sim import Result

_TABLE = (
    ("t", "time", "{:>7}"),
    ("chats_per_s", "chats/s", "{:>7.0f}"),
    ("model_latency_s", "model s", "{:>7.2f}"),
    ("api_replicas", "api", "{:>4.0f}"),
    ("api_ready", "ready", "{:>5.0f}"),
    ("in_flight_per_pod", "inflight", "{:>8.0f}"),
    ("api_cpu_percent", "cpu%", "{:>5.0f}"),
    ("refused_per_s", "refused/s", "{:>9.1f}"),
    ("latency_s", "lat s", "{:>6.2f}"),
    ("worker_replicas", "wrk", "{:>4.0f}"),
    ("tasks_waiting", "waiting", "{:>8.0f}"),
    ("tasks_running", "running", "{:>7.0f}"),
    ("nodes", "nodes", "{:>5.0f}"),
    ("pending_pods", "pend", "{:>4.0f}"),
    ("cost_usd", "cost $", "{:>7.2f}"),
)


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def text(result: Result, rows: int = 24) -> str:
    """The run as text: configuration, about `rows` timeline rows, and the figures."""
    setup = result.setup
    cap = min(setup.max_concurrent_sessions, setup.model_max_connections)
    lines = [
        f"stack {setup.stack} ({setup.region}), profile {result.profile.name}: "
        f"{result.profile.description}",
        f"per-pod figures from {Path(result.figures.source).name}: "
        + ", ".join(f"{k} {v}" for k, v in result.figures.summary().items()),
        f"API pod: {setup.api.cpu_request_m}m / {setup.api.memory_request_mib:.0f}Mi requested, "
        f"{setup.api.cpu_limit:g} core, {cap} chats in flight at most; "
        f"worker: WORKER_CONCURRENCY {setup.worker_concurrency}",
        _nodes(result),
        *setup.api.autoscaler.describe(),
        *setup.worker.autoscaler.describe(),
    ]
    if rows > 0:
        lines += ["", "  ".join(title.rjust(len(fmt.format(0))) for _, title, fmt in _TABLE)]
        count = len(result.rows["t"])
        for index in [*range(0, count, max(1, count // rows)), count - 1]:
            cells = []
            for key, _, fmt in _TABLE:
                value = result.rows[key][index]
                cells.append(fmt.format(clock(value)) if key == "t" else fmt.format(value))
            lines.append("  ".join(cells))
    lines.append("")
    summary = result.summary()
    lines += [
        f"chats {summary['chats']:,}, refused {summary['refused']:,} "
        f"({summary['refused_percent']}%), peak {summary['peak_refused_per_s']}/s; "
        f"latency mean {summary['mean_latency_s']} s, max {summary['max_latency_s']} s",
        f"API replicas {summary['api_replicas'][0]}..{summary['api_replicas'][1]}, workers "
        f"{summary['worker_replicas'][0]}..{summary['worker_replicas'][1]}, nodes "
        f"{summary['nodes'][0]}..{summary['nodes'][1]} (pending pods at most "
        f"{summary['max_pending_pods']})",
        f"tasks {summary['tasks']:,}, finished {summary['tasks_finished']:,}, waiting at most "
        f"{summary['peak_tasks_waiting']:,}, longest backlog {clock(summary['longest_backlog_s'])},"
        f" waiting at the end {summary['tasks_waiting_at_end']:,}",
        _cost(result, summary),
    ]
    return "\n".join(lines)


def _nodes(result: Result) -> str:
    setup, group, options = result.setup, result.setup.group, result.options
    timing = f"pod start {options.pod_start_s:g} s, node start {_node_start(result):g} s"
    if not setup.pools:
        return (
            f"nodes (Cluster Autoscaler): {group.instance.name} x {group.min_size}.."
            f"{group.max_size} (${group.price_per_hour}/h on demand), {timing}"
        )
    pools = "; ".join(
        f"{p.name} (weight {p.weight}, {', '.join(t.name for t in p.types)}; limit "
        f"{p.cpu_limit:g} vCPU, consolidate after {p.consolidate_after_s:g} s)"
        for p in setup.pools
    )
    placement = ", ".join(
        f"{tier} on {'/'.join(on)}" for tier, on in (setup.placement or {}).items()
    )
    return (
        f"nodes (Karpenter): system group {group.instance.name} x {group.desired_size} "
        f"(${group.price_per_hour}/h); NodePools {pools}; {placement}; {timing}"
    )


def _node_start(result: Result) -> float:
    from .karpenter import NODE_START_S
    from .sim import CA_NODE_START_S

    if result.options.node_start_s is not None:
        return result.options.node_start_s
    return NODE_START_S if result.setup.pools else CA_NODE_START_S


def _cost(result: Result, summary: dict) -> str:
    group = result.setup.group
    if not result.setup.pools:
        return (
            f"cost: {summary['node_hours']} node-hours x ${group.price_per_hour}/h "
            f"({group.instance.name} on demand) = ${summary['cost_usd']}"
        )
    return (
        f"cost: {summary['node_hours']} node-hours (system group and Karpenter's nodes, each at "
        f"its type's on-demand price; Spot not discounted) = ${summary['cost_usd']}"
    )


def plot(result: Result, path: Path) -> Path:
    """Replicas, nodes, queue depth, refused chats and latency over time, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    r = result.rows
    hours = result.profile.duration_s >= 4 * 3600
    x = [t / (3600 if hours else 60) for t in r["t"]]
    panels = (
        ("load", (("chats_per_s", "chats/s"), ("served_per_s", "served/s"))),
        ("replicas and nodes", (("api_replicas", "API"), ("api_ready", "API ready"),
                                ("worker_replicas", "workers"), ("nodes", "nodes"))),
        ("refused chats/s", (("refused_per_s", "refused/s"),)),
        ("chat latency s", (("latency_s", "response"), ("model_latency_s", "model"))),
        ("tasks", (("tasks_waiting", "waiting (lag)"), ("tasks_running", "running (pending)"))),
        ("cost $", (("cost_usd", "nodes, cumulative"),)),
    )  # fmt: skip
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 14), sharex=True)
    for axis, (title, series) in zip(axes, panels, strict=True):
        for key, label in series:
            axis.plot(x, r[key], label=label, linewidth=1.2)
        axis.set_ylabel(title)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("hours" if hours else "minutes")
    sources = ", ".join(s.autoscaler.source for s in (result.setup.api, result.setup.worker))
    figure.suptitle(f"{result.setup.stack} / {result.profile.name} ({sources})", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
