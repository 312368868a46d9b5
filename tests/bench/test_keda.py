"""ScaledObjects become the HPA KEDA makes of them; the composite metric sums named triggers."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from bench.autoscale import keda
from bench.autoscale.hpa import Policy, external_replicas
from bench.autoscale.scaling import ExternalMetric, NotModelled, ResourceMetric, Signal, from_hpa

EXAMPLES = Path(__file__).resolve().parents[2] / "bench" / "autoscale" / "examples" / "keda"
HIGH, NORMAL = "agent:tasks:high", "agent:tasks:normal"


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.fixture
def worker() -> dict:
    return example("scaledobject-worker.yaml")


def test_the_worker_scaledobject_becomes_cpu_memory_and_one_composite_metric(worker):
    scaler = keda.from_scaledobject(worker)
    assert (scaler.source, scaler.target) == ("ScaledObject agent-worker", "agent-worker")
    assert (scaler.min_replicas, scaler.max_replicas, scaler.scale_to_zero) == (2, 10, False)
    cpu, memory, composite = scaler.metrics
    assert cpu == ResourceMetric("cpu", "Utilization", 70)
    assert memory == ResourceMetric("memory", "Utilization", 80)
    assert isinstance(composite, ExternalMetric)
    assert (composite.name, composite.target_type, composite.target) == (
        "composite-metric", "AverageValue", 8.0)  # fmt: skip
    assert dict(composite.inputs) == {
        "high_lag": Signal(f"stream_lag:{HIGH}"),
        "high_pending": Signal(f"stream_pending:{HIGH}"),
        "normal_lag": Signal(f"stream_lag:{NORMAL}"),
        "normal_pending": Signal(f"stream_pending:{NORMAL}"),
    }
    assert scaler.behavior.up.policies == (Policy("Percent", 100, 60), Policy("Pods", 4, 60))
    assert scaler.behavior.down.stabilization_s == 300


def test_the_composite_sums_lag_and_pending_of_both_streams(worker):
    observed = {
        f"stream_lag:{HIGH}": 30, f"stream_pending:{HIGH}": 16,
        f"stream_lag:{NORMAL}": 50, f"stream_pending:{NORMAL}": 0,
    }  # fmt: skip
    composite = keda.from_scaledobject(worker).metrics[-1]
    assert composite.value(observed) == 96
    # 96 tasks waiting or running at 8 per worker: ceil(96 / 8) = 12 workers
    assert external_replicas(2, 2, composite.value(observed), 8, "AverageValue") == 12
    # Without scalingModifiers each trigger is its own metric and the HPA takes the maximum:
    # ceil(50 / 8) = 7 workers for the same 96 tasks.
    separate = copy.deepcopy(worker)
    del separate["spec"]["advanced"]["scalingModifiers"]
    metrics = [m for m in keda.from_scaledobject(separate).metrics if isinstance(m, ExternalMetric)]
    assert [m.target for m in metrics] == [8, 8, 8, 8]
    proposals = [external_replicas(2, 2, m.value(observed), 8, "AverageValue") for m in metrics]
    assert proposals == [4, 2, 7, 0]


def test_the_api_scaledobject_adds_chats_in_flight_to_cpu_and_memory():
    scaler = keda.from_scaledobject(example("scaledobject-api.yaml"))
    assert [m.name for m in scaler.metrics] == ["cpu", "memory", "s2-prometheus"]
    in_flight = scaler.metrics[2]
    assert (in_flight.target_type, in_flight.target) == ("AverageValue", 60.0)
    # 3 pods each at their cap of 100 chats in flight: ceil(300 / 60) = 5 pods
    value = in_flight.value({"api_chats_in_flight": 300})
    assert external_replicas(3, 3, value, in_flight.target, in_flight.target_type) == 5


def test_redis_trigger_modes_follow_kedas_rules():
    def signal(meta: dict) -> tuple[str, float]:
        metric = keda._external("so", 0, {"type": "redis-streams", "metadata": meta})
        return metric.signal.key, metric.target

    group = {"stream": "s", "consumerGroup": "g"}
    assert signal({**group, "lagCount": "10"}) == ("stream_lag:s", 10)
    assert signal(group) == ("stream_pending:s", 5)  # pendingEntriesCount defaults to 5
    assert signal({**group, "pendingEntriesCount": "3"}) == ("stream_pending:s", 3)
    assert signal({"stream": "s"}) == ("stream_length:s", 5)  # no group: XLEN


def test_cloudwatch_requests_per_target_sum_over_the_period():
    trigger = {"type": "aws-cloudwatch", "metricType": "Value", "metadata": {
        "namespace": "AWS/ApplicationELB", "metricName": "RequestCountPerTarget",
        "metricStat": "Sum", "metricStatPeriod": "60", "targetMetricValue": "6000"}}  # fmt: skip
    metric = keda._external("api", 0, trigger)
    assert metric.value({"api_requests_per_target_per_s": 150}) == 9000  # 150/s over 60 s
    assert external_replicas(4, 4, 9000, 6000, "Value") == 6  # ceil(1.5 x 4)


def test_scale_to_zero_keeps_an_hpa_minimum_of_one():
    obj = example("scaledobject-worker.yaml")
    obj["spec"]["minReplicaCount"] = 0
    scaler = keda.from_scaledobject(obj)
    assert (scaler.min_replicas, scaler.scale_to_zero, scaler.cooldown_s) == (1, True, 300)
    del obj["spec"]["maxReplicaCount"], obj["spec"]["cooldownPeriod"]
    assert (keda.from_scaledobject(obj).max_replicas, keda.from_scaledobject(obj).cooldown_s) == (
        100, 300)  # fmt: skip


def test_formulas_are_arithmetic_over_trigger_names():
    names = {"a", "b"}
    assert keda.compile_formula("(a + b) / 2", names)({"a": 3, "b": 5}) == 4
    assert keda.compile_formula("max(a, b * 2) - 1", names)({"a": 3, "b": 5}) == 9
    assert keda.compile_formula("-a + ceil(b / 2)", names)({"a": 1, "b": 5}) == 2
    with pytest.raises(NotModelled, match="'c' is not a named trigger"):
        keda.compile_formula("a + c", names)
    with pytest.raises(NotModelled, match="Compare is not modelled"):
        keda.compile_formula("a > b", names)
    with pytest.raises(NotModelled, match="formula 'a \\?\\? b'"):
        keda.compile_formula("a ?? b", names)


def test_what_is_not_modelled_is_named():
    obj = example("scaledobject-api.yaml")
    obj["spec"]["triggers"].append({"type": "kafka", "metadata": {"topic": "t"}})
    with pytest.raises(NotModelled, match="trigger type 'kafka'"):
        keda.from_scaledobject(obj)
    obj = example("scaledobject-api.yaml")
    obj["spec"]["triggers"][2]["metadata"]["query"] = "sum(up)"
    with pytest.raises(NotModelled, match="must name one of"):
        keda.from_scaledobject(obj)
    obj = example("scaledobject-api.yaml")
    del obj["spec"]["triggers"][0]["metricType"]
    with pytest.raises(NotModelled, match="cpu trigger needs metricType"):
        keda.from_scaledobject(obj)


def test_a_rendered_hpa_reads_its_resource_and_external_metrics():
    hpa = {
        "metadata": {"name": "agent-api"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "agent-api"},
            "minReplicas": 3,
            "maxReplicas": 20,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "AverageValue", "averageValue": "350m"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {
                    "type": "AverageValue", "averageValue": "400Mi"}}},
                {"type": "External", "external": {"metric": {"name": "api_chats_in_flight"},
                    "target": {"type": "AverageValue", "averageValue": "60"}}},
            ],
        },
    }  # fmt: skip
    scaler = from_hpa(hpa)
    assert scaler.metrics == (
        ResourceMetric("cpu", "AverageValue", 0.35),
        ResourceMetric("memory", "AverageValue", 400.0),
        ExternalMetric("api_chats_in_flight", "AverageValue", 60.0, Signal("api_chats_in_flight")),
    )
    assert (scaler.min_replicas, scaler.max_replicas) == (3, 20)
    hpa["spec"]["metrics"] = [{"type": "Pods", "pods": {}}]
    with pytest.raises(NotModelled, match="Pods metrics"):
        from_hpa(hpa)
