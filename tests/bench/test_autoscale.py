"""The simulator end to end on prod's render: short profiles, figures worked out by hand.

Per-pod figures of bench/results/2026-11-26.json: 1.865 ms of CPU per chat; prod: API 3..20
pods of 500m (limit 1 core), MAX_CONCURRENT_SESSIONS 100, workers 2..10 with
WORKER_CONCURRENCY 8, t3.large nodes (1,805m for pods after reservations: 3 pods each).
The render holds KEDA ScaledObjects (chats in flight per pod for the API, lag + pending for the
worker); `cpu_only` keeps their CPU and memory triggers: the HPAs before KEDA.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.autoscale import __main__ as cli
from bench.autoscale import rendered
from bench.autoscale.cluster import allocatable
from bench.autoscale.figures import PodFigures
from bench.autoscale.hpa import external_replicas
from bench.autoscale.profiles import Profile
from bench.autoscale.scaling import ExternalMetric
from bench.autoscale.sim import Options, run
from infra import prices
from infra.offline.render import write
from tests.infra.pulumi_harness import ROOT, graph_of, run_program

RESULTS = ROOT / "bench" / "results" / "2026-11-26.json"
KEDA = ROOT / "bench" / "autoscale" / "examples" / "keda"


@pytest.fixture(scope="module")
def render(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render-prod")
    write(graph_of("prod"), out)
    return out


@pytest.fixture(scope="module")
def render_ca(tmp_path_factory) -> Path:
    """prod with `nodeAutoscaler: cluster-autoscaler` (one t3.large node group)."""
    out = tmp_path_factory.mktemp("render-prod-ca")
    write(run_program("prod", {"nodeAutoscaler": "cluster-autoscaler"}), out)
    return out


@pytest.fixture(scope="module")
def figures() -> PodFigures:
    return PodFigures.from_results(RESULTS)


def spike(model_s: float = 2.0, task_s: float = 2.0) -> Profile:
    """10 minutes of 400 chats/s; the model slows from 0.2 s to `model_s` after 2 minutes."""
    return Profile.from_dict("short-spike", {
        "duration_s": 600,
        "series": {
            "chats_per_s": [[0, 400]],
            "model_latency_s": [[0, 0.2], [120, model_s]],
            "tasks_per_s": [[0, 2]],
            "task_latency_s": [[0, 2], [120, task_s]],
        },
    })  # fmt: skip


def test_the_figures_come_from_the_bench_results(figures):
    assert figures.chat_cpu_s == pytest.approx(0.001865)
    assert figures.base_rss_mib == pytest.approx(111.0)
    assert figures.chat_rss_mib == pytest.approx((126.1 - 111.0) / 200)
    assert figures.task_cpu_s == pytest.approx(0.55 / 278.5)


def test_the_setup_is_read_from_the_render(render):
    setup = rendered.load(render)
    # The Pulumi HPAs are in the render too (kept for one release): the ScaledObjects win.
    assert setup.api.autoscaler.source == "ScaledObject agent-api"
    assert setup.worker.autoscaler.source == "ScaledObject agent-worker"
    assert [m.name for m in setup.api.autoscaler.metrics] == ["cpu", "memory", "s2-prometheus"]
    assert [m.name for m in setup.worker.autoscaler.metrics] == [
        "cpu", "memory", "composite-metric"]  # fmt: skip
    cpu_only = rendered.load(render, cpu_only=True)
    assert cpu_only.api.autoscaler.source == "ScaledObject agent-api (cpu/memory only)"
    assert [m.name for m in cpu_only.worker.autoscaler.metrics] == ["cpu", "memory"]
    assert (setup.api.cpu_request_m, setup.api.memory_request_mib, setup.api.cpu_limit) == (
        500, 512.0, 1.0)  # fmt: skip
    assert (setup.api.autoscaler.min_replicas, setup.api.autoscaler.max_replicas) == (3, 20)
    assert (setup.worker.autoscaler.min_replicas, setup.worker.autoscaler.max_replicas) == (2, 10)
    assert (setup.max_concurrent_sessions, setup.worker_concurrency) == (100, 8)
    group = setup.group
    assert (group.instance.name, group.min_size, group.max_size, group.price_per_hour) == (
        "t3.large", 1, 10, 0.0832)  # fmt: skip
    with_keda = rendered.load(render, KEDA)
    assert with_keda.api.autoscaler.source == "ScaledObject agent-api"
    assert with_keda.worker.autoscaler.source == "ScaledObject agent-worker"


def test_the_rendered_worker_formula_sums_lag_and_pending_per_worker_concurrency(render):
    (composite,) = [m for m in rendered.load(render).worker.autoscaler.metrics
                    if isinstance(m, ExternalMetric)]  # fmt: skip
    assert (composite.target_type, composite.target) == ("AverageValue", 8.0)

    def tasks(high_lag: int, high_pending: int, normal_lag: int, normal_pending: int) -> float:
        return composite.value({
            "stream_lag:agent:tasks:high": high_lag,
            "stream_pending:agent:tasks:high": high_pending,
            "stream_lag:agent:tasks:normal": normal_lag,
            "stream_pending:agent:tasks:normal": normal_pending,
        })  # fmt: skip

    # Worked out by hand: the sum of the four, then ceil(sum / 8) (External AverageValue).
    assert tasks(30, 16, 50, 0) == 96
    assert external_replicas(2, 2, 96, 8, "AverageValue") == 12  # ceil(96 / 8)
    assert external_replicas(1, 1, tasks(0, 8, 9, 0), 8, "AverageValue") == 3  # ceil(17 / 8)
    # ... but on 2 workers 17 / 16 = 1.0625 is within the 0.1 tolerance: no change
    assert external_replicas(2, 2, tasks(0, 8, 9, 0), 8, "AverageValue") == 2
    # 34 tasks on 4 workers: ratio 34 / 32 = 1.0625, within the 0.1 tolerance: stays at 4
    assert external_replicas(4, 4, tasks(10, 8, 0, 16), 8, "AverageValue") == 4
    # busy workers are not scaled down: 40 running on 5 workers is exactly the target
    assert external_replicas(5, 5, tasks(0, 8, 0, 32), 8, "AverageValue") == 5
    # Nothing queued or running: 0, and minReplicaCount 2 holds the two workers
    assert external_replicas(3, 3, tasks(0, 0, 0, 0), 8, "AverageValue") == 0


def test_cpu_only_scaling_refuses_chats_when_the_model_slows(render, figures):
    result = run(rendered.load(render, cpu_only=True), spike(), figures)
    summary = result.summary()
    # Before the spike: 400/3 = 133.3 chats/s per pod = 0.249 cores = 50% of 500m; the CPU
    # HPA (70%) keeps the minimum of 3. At 2 s a pod holds its cap of 100 chats:
    # a x (2 + 1.865 ms / (1 - a x 1.865 ms)) = 100 -> a = 49.95 chats/s per pod, so
    # 400 - 3 x 49.95 = 250.15 chats/s are refused for 480 s: 120,074 chats; CPU falls to 19%.
    assert summary["api_replicas"] == (3, 3)
    assert summary["refused"] == pytest.approx(120_074, rel=0.002)
    assert summary["peak_refused_per_s"] == pytest.approx(250.2, abs=0.1)
    assert summary["max_latency_s"] == pytest.approx(2.002, abs=0.001)
    assert result.rows["api_cpu_percent"][0] == pytest.approx(49.7, abs=0.1)
    assert result.rows["api_cpu_percent"][-1] == pytest.approx(18.6, abs=0.1)
    assert summary["refused_percent"] == pytest.approx(100 * 120_074 / 240_000, abs=0.2)


def test_chats_in_flight_scale_the_api_before_it_refuses(render_ca, figures):
    result = run(rendered.load(render_ca, KEDA), spike(), figures)
    summary = result.summary()
    # 400 chats/s x 2.002 s = 800.8 chats in flight; 60 per pod: ceil(800.8 / 60) = 14 pods.
    # 14 API pods + 2 workers + system pods at 3 per t3.large: 6 nodes (2 before the spike).
    assert summary["api_replicas"] == (3, 14)
    assert summary["nodes"] == (2, 6)
    assert result.rows["api_ready"][-1] == 14
    assert result.rows["refused_per_s"][-1] == 0
    # Refused while pods and nodes start. A pod at its cap reports 100 in flight, so each HPA
    # round grows the ready pods by at most 100/60 and needs a node: two rounds of Cluster
    # Autoscaler (scan 10 s + node 120 s + pod 20 s) end the refusals 300 s into the spike.
    refusing = [t for t, r in zip(result.rows["t"], result.rows["refused_per_s"], strict=True) if r]
    assert (refusing[0], refusing[-1]) == (120, 120 + 299)
    assert 0 < summary["refused"] < 0.35 * 120_074
    # t3.large at $0.0832/h: cost = node-hours x 0.0832
    assert summary["cost_usd"] == pytest.approx(summary["node_hours"] * 0.0832, abs=0.01)


def burst() -> Profile:
    """0.5 task/s; 50 tasks/s from 60 s to 180 s (6,000 tasks), 2 s each."""
    return Profile.from_dict("short-burst", {
        "duration_s": 1500,
        "series": {
            "chats_per_s": [[0, 200]],
            "model_latency_s": [[0, 0.2]],
            "tasks_per_s": [[0, 0.5], [60, 50], [180, 0.5]],
            "task_latency_s": [[0, 2]],
        },
    })  # fmt: skip


def test_a_task_burst_drains_at_the_workers_pace(render_ca, figures):
    # Cluster Autoscaler's node start (120 s) in the arithmetic below; Karpenter's is tested
    # with the other node model's tests.
    cpu_only = run(rendered.load(render_ca, cpu_only=True), burst(), figures).summary()
    # CPU-only: 2 workers x 8 slots / 2 s = 8 tasks/s. During the burst 50 - 8 = 42/s pile up
    # (~5,024 waiting after 120 s), then drain at 8 - 0.5 = 7.5/s: ~670 s more, ~790 s in all.
    assert cpu_only["worker_replicas"] == (2, 2)
    assert cpu_only["peak_tasks_waiting"] == pytest.approx(5_024, rel=0.01)
    assert cpu_only["longest_backlog_s"] == pytest.approx(790, abs=10)
    with_keda = run(rendered.load(render_ca), burst(), figures).summary()
    # lag + pending reaches the maximum of 10 workers (40 tasks/s once they run)
    assert with_keda["worker_replicas"] == (2, 10)
    # Drained within 5 minutes of the burst's start (282 s). At best 40 tasks/s from the start:
    # 6,000 - 40 x 120 = 1,200 left at its end, 1,200 / 39.5 = 30 s more: 150 s. The workers
    # grow 2 -> 6 -> 10 per minute (max(+100%, +4)) and 8 of them wait for nodes (10 s scan +
    # 120 s + 20 s pod start), which costs the rest.
    assert 150 < with_keda["longest_backlog_s"] <= 300
    assert with_keda["longest_backlog_s"] == pytest.approx(282, abs=15)
    assert with_keda["tasks_finished"] == with_keda["tasks"]


def test_pods_start_after_their_node(render, figures):
    slow = run(rendered.load(render), spike(), figures, Options(node_start_s=300))
    fast = run(rendered.load(render), spike(), figures, Options(node_start_s=30))
    assert slow.summary()["refused"] > fast.summary()["refused"]


def test_the_command_prints_the_run_and_writes_the_png(render, tmp_path, capsys):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(
        "duration_s: 120\nseries:\n  chats_per_s: [[0, 100]]\n  model_latency_s: [[0, 0.2]]\n"
        "  tasks_per_s: [[0, 1]]\n  task_latency_s: [[0, 2]]\n"
    )
    png = tmp_path / "run.png"
    code = cli.main(["--stack", "prod", "--profile", str(profile), "--render", str(render),
                     "--bench-results", str(RESULTS), "--out", str(png)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "ScaledObject agent-api: agent-api 3..20" in out
    assert "External composite-metric AverageValue 8 <- high_lag, high_pending" in out
    assert "chats 12,000, refused 0 (0.0%)" in out
    assert f"plot: {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_cpu_only_drops_the_keda_triggers_from_the_command(render, tmp_path, capsys):
    png = tmp_path / "cpu.png"
    code = cli.main(["--stack", "prod", "--profile", "steady", "--render", str(render),
                     "--bench-results", str(RESULTS), "--out", str(png), "--rows", "0",
                     "--cpu-only"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "ScaledObject agent-worker (cpu/memory only): agent-worker 2..10" in out
    assert "External" not in out
    assert png.is_file()


def test_bad_input_is_one_clear_line(render, capsys):
    code = cli.main(["--stack", "prod", "--profile", "nope", "--render", str(render)])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: no profile 'nope'; shipped: daily-ramp, ")
    code = cli.main(["--stack", "dev", "--profile", "steady", "--render", str(render)])
    assert code == 2
    assert "is a render of prod, not dev" in capsys.readouterr().err
    code = cli.main(["--stack", "foo", "--profile", "steady"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: Pulumi.foo.yaml: not found; stacks are dev")


def test_keda_scales_an_idle_worker_to_zero_and_wakes_it(render, figures, tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    worker = yaml.safe_load((KEDA / "scaledobject-worker.yaml").read_text())
    worker["spec"]["minReplicaCount"] = 0
    (overlay / "worker.yaml").write_text(yaml.safe_dump(worker))
    profile = Profile.from_dict("idle-then-tasks", {
        "duration_s": 900,
        "series": {
            "chats_per_s": [[0, 100]],
            "model_latency_s": [[0, 0.2]],
            "tasks_per_s": [[0, 0], [60, 4], [120, 0]],
            "task_latency_s": [[0, 2]],
        },
    })  # fmt: skip
    result = run(rendered.load(render, overlay), profile, figures)
    rows = result.rows
    # Idle through the warm-up: 0 workers. The first task at 60 s: active at the 60 s sync,
    # 1 worker, then the HPA: 4 tasks/s x 2 s = 8 running + the lag. 300 s (cooldownPeriod)
    # after the last task KEDA scales it to zero again.
    assert rows["worker_replicas"][0] == 0
    assert rows["worker_replicas"][60] == 1
    assert max(rows["worker_replicas"]) >= 2
    assert result.summary()["tasks_finished"] == 240
    last_busy = max(t for t, n in zip(rows["t"], rows["tasks_running"], strict=True) if n >= 0.5)
    zero_again = next(t for t, n in zip(rows["t"], rows["worker_replicas"], strict=True)
                      if t > last_busy and n == 0)  # fmt: skip
    # KEDA checks at the syncs (every 15 s): 300 s after the last one that saw a task
    assert 300 - 15 <= zero_again - last_busy <= 300 + 15


def test_a_t3_large_offers_three_api_pods():
    t3 = prices.instance_type("t3.large")
    assert (t3.vcpu, t3.memory_mib, t3.max_pods) == (2, 8192, 35)  # 3 ENIs x (12 - 1) + 2
    # CPU: 2000m - kube-reserved (6% of 1000 + 1% of 1000 = 70m) - daemonsets 125m = 1805m
    # memory: 8192 x 0.925 - (11 x 35 + 255) - 100 = 6837.6 MiB
    assert allocatable(t3) == (1805, pytest.approx(6837.6))
    assert allocatable(prices.instance_type("m5.xlarge"))[0] == 4000 - 80 - 125
    assert prices.on_demand_hourly("m5.xlarge", "us-east-1") == 0.192
    with pytest.raises(ValueError, match=r"no prices for region 'eu-west-1'"):
        prices.on_demand_hourly("t3.large", "eu-west-1")
    with pytest.raises(ValueError, match=r"no facts for instance type 'c7g.large'"):
        prices.instance_type("c7g.large")


def test_karpenter_pools_and_placement_are_read_from_the_render(render, render_ca):
    setup = rendered.load(render)
    assert [p.name for p in setup.pools] == ["api", "workers"]
    api, workers = setup.pools
    assert (api.weight, workers.weight) == (10, 20)
    assert (api.cpu_limit, api.memory_limit_mib, api.consolidate_after_s) == (128, 512 * 1024, 300)
    assert len(api.types) == 12 and len(workers.types) == 15
    assert api.prices["c6i.xlarge"] == 0.17
    # API pods tolerate no taint: api only; workers tolerate the workers pool's taint.
    assert setup.placement == {"api": ("api",), "worker": ("api", "workers")}
    assert rendered.load(render_ca).pools == ()


def test_karpenter_launches_the_cheapest_fitting_type_a_minute_after_the_pods_wait(
    render, render_ca, figures
):
    result = run(rendered.load(render, KEDA), spike(), figures)
    summary = result.summary()
    # Before the spike: 3 system nodes (t3.large, never resized) and one Karpenter node for
    # 3 API + 2 worker pods (2500m, 2560 MiB): c6i.large offers 1805m, so the cheapest that
    # fits is c6i.xlarge ($0.17/h; 3785m, 6584.6 MiB for pods).
    assert summary["nodes"] == (4, 7)
    assert summary["api_replicas"] == (3, 14)
    # Each second costs the nodes' hourly prices / 3600: after 61 recorded seconds (t 0..60),
    # (3 x $0.0832 + $0.17) x 61 / 3600.
    assert result.rows["cost_usd"][60] == pytest.approx((3 * 0.0832 + 0.17) * 61 / 3600, abs=1e-6)
    # Nodes Ready in 60 s instead of Cluster Autoscaler's 120 s: refusals end 150 s into the
    # spike instead of 300 s, and fewer chats are refused.
    refusing = [t for t, r in zip(result.rows["t"], result.rows["refused_per_s"], strict=True) if r]
    assert (refusing[0], refusing[-1]) == (120, 120 + 149)
    with_ca = run(rendered.load(render_ca, KEDA), spike(), figures).summary()
    assert summary["refused"] < 0.6 * with_ca["refused"]


def test_karpenter_consolidates_the_nodes_a_burst_needed(render, figures):
    profile = Profile.from_dict("burst-then-quiet", {
        "duration_s": 1800,
        "series": {
            "chats_per_s": [[0, 200]],
            "model_latency_s": [[0, 0.2]],
            "tasks_per_s": [[0, 0.5], [60, 50], [180, 0.5]],
            "task_latency_s": [[0, 2]],
        },
    })  # fmt: skip
    result = run(rendered.load(render, KEDA), profile, figures)
    nodes = result.rows["nodes"]
    # 10 workers need two more nodes; once KEDA scales them back to 2 the extra nodes are
    # empty or their pods fit elsewhere, and 5 minutes later Karpenter removes them, one at a
    # time: back to the 3 system nodes and one c6i.xlarge.
    assert max(nodes) == 6 and nodes[0] == 4 and nodes[-1] == 4
    assert result.summary()["tasks_finished"] == result.summary()["tasks"]
