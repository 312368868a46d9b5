"""A KEDA ScaledObject (keda.sh/v1alpha1, KEDA 2.20) as the HPA KEDA creates from it.

- Bounds: HPA minReplicas = minReplicaCount (at least 1; KEDA itself scales 0 <-> 1 when
  minReplicaCount is 0, after `cooldownPeriod` without an active trigger), maxReplicas =
  maxReplicaCount (default 100); behavior = advanced.horizontalPodAutoscalerConfig.behavior.
- cpu / memory triggers become Resource metrics (their `metricType`, `metadata.value`).
- Every other trigger becomes an External metric whose target is the scaler's threshold, type
  the trigger's `metricType` (AverageValue by default, or Value).
- With advanced.scalingModifiers, the named triggers feed `formula` and the HPA gets one
  External `composite-metric` (target `target`, type `metricType`) in place of every External
  metric; cpu/memory metrics stay beside it.

Scalers modelled (what each reads, `scaling.SIGNALS`):
- redis-streams (and -cluster-, -sentinel-): `consumerGroup` + non-zero `lagCount` -> lag;
  `consumerGroup` alone -> pending entries (target `pendingEntriesCount`, default 5); no
  group -> stream length (target `streamLength`, default 5); activation `activationLagCount`.
- prometheus: the query's metric must be one of `PROMETHEUS_METRICS` (sum over pods, or a rate
  for a counter); target `threshold`, activation `activationThreshold`.
- aws-cloudwatch: AWS/ApplicationELB RequestCountPerTarget or RequestCount, summed over
  `metricStatPeriod` (default 300 s); target `targetMetricValue`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from .hpa import Behavior
from .scaling import (
    Autoscaler,
    ExternalMetric,
    Metric,
    NotModelled,
    ResourceMetric,
    Signal,
    quantity,
)

PROMETHEUS_METRICS = {
    "agent_chats_in_flight": "api_chats_in_flight",
    "http_requests_total": "api_requests_per_s",
}
_REDIS_TYPES = ("redis-streams", "redis-cluster-streams", "redis-sentinel-streams")


def from_scaledobject(obj: dict[str, Any]) -> Autoscaler:
    """The HPA KEDA makes of this ScaledObject, plus its activation settings."""
    name = obj["metadata"]["name"]
    spec = obj["spec"]
    if spec.get("idleReplicaCount") is not None:
        raise NotModelled(f"ScaledObject {name}: idleReplicaCount")
    target_ref = spec["scaleTargetRef"]
    if target_ref.get("kind", "Deployment") != "Deployment":
        raise NotModelled(f"ScaledObject {name}: scaleTargetRef kind {target_ref['kind']!r}")
    advanced = spec.get("advanced") or {}
    modifiers = advanced.get("scalingModifiers")
    metrics: list[Metric] = []
    named: dict[str, ExternalMetric] = {}
    for index, trigger in enumerate(spec["triggers"]):
        if trigger["type"] in ("cpu", "memory"):
            metrics.append(_resource(name, trigger))
            continue
        external = _external(name, index, trigger)
        if modifiers is None:
            metrics.append(external)
        elif trigger.get("name"):
            named[trigger["name"]] = external
    if modifiers is not None:
        formula = compile_formula(modifiers["formula"], set(named))
        metrics.append(
            ExternalMetric(
                name="composite-metric",
                target_type=modifiers.get("metricType", "AverageValue"),
                target=float(modifiers["target"]),
                formula=formula,
                inputs={n: m.signal for n, m in named.items() if m.signal},
                activation=float(modifiers.get("activationTarget", 0)),
            )
        )
    minimum = int(spec.get("minReplicaCount", 0))
    return Autoscaler(
        source=f"ScaledObject {name}",
        target=target_ref["name"],
        min_replicas=max(minimum, 1),
        max_replicas=int(spec.get("maxReplicaCount", 100)),
        behavior=Behavior.from_spec(
            (advanced.get("horizontalPodAutoscalerConfig") or {}).get("behavior")
        ),
        metrics=tuple(metrics),
        scale_to_zero=minimum == 0,
        cooldown_s=int(spec.get("cooldownPeriod", 300)),
    )


def _resource(name: str, trigger: dict[str, Any]) -> ResourceMetric:
    kind = trigger.get("metricType")
    if kind not in ("Utilization", "AverageValue"):
        raise NotModelled(
            f"ScaledObject {name}: {trigger['type']} trigger needs metricType Utilization or "
            f"AverageValue, not {kind!r}"
        )
    value = trigger["metadata"]["value"]
    if kind == "Utilization":
        return ResourceMetric(trigger["type"], kind, float(value))
    amount = quantity(value)
    return ResourceMetric(
        trigger["type"], kind, amount / 1024**2 if trigger["type"] == "memory" else amount
    )


def _external(name: str, index: int, trigger: dict[str, Any]) -> ExternalMetric:
    kind = trigger["type"]
    meta = trigger.get("metadata") or {}
    metric_type = trigger.get("metricType", "AverageValue")
    if metric_type not in ("AverageValue", "Value"):
        raise NotModelled(f"ScaledObject {name}: trigger {index} metricType {metric_type!r}")
    if kind in _REDIS_TYPES:
        signal, target, activation = _redis(meta)
    elif kind == "prometheus":
        signal = _prometheus(name, meta["query"])
        target = float(meta["threshold"])
        activation = float(meta.get("activationThreshold", 0))
    elif kind == "aws-cloudwatch":
        signal = _cloudwatch(name, meta)
        target = float(meta["targetMetricValue"])
        activation = float(meta.get("activationTargetMetricValue", 0))
    else:
        raise NotModelled(
            f"ScaledObject {name}: trigger type {kind!r}; modelled: cpu, memory, "
            f"{', '.join(_REDIS_TYPES)}, prometheus, aws-cloudwatch"
        )
    return ExternalMetric(f"s{index}-{kind}", metric_type, target, signal, activation=activation)


def _redis(meta: dict[str, str]) -> tuple[Signal, float, float]:
    stream = meta["stream"]
    activation = float(meta.get("activationLagCount", 0))
    lag = float(meta.get("lagCount") or 0)
    if meta.get("consumerGroup") and lag:
        return Signal(f"stream_lag:{stream}"), lag, activation
    if meta.get("consumerGroup"):
        return (
            Signal(f"stream_pending:{stream}"),
            float(meta.get("pendingEntriesCount", 5)),
            activation,
        )
    return Signal(f"stream_length:{stream}"), float(meta.get("streamLength", 5)), activation


def _prometheus(name: str, query: str) -> Signal:
    found = {m for m in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", query) if m in PROMETHEUS_METRICS}
    if len(found) != 1:
        raise NotModelled(
            f"ScaledObject {name}: prometheus query {query!r} must name one of "
            f"{sorted(PROMETHEUS_METRICS)}"
        )
    return Signal(PROMETHEUS_METRICS[found.pop()])


def _cloudwatch(name: str, meta: dict[str, str]) -> Signal:
    period = float(meta.get("metricStatPeriod", 300))
    metric = (meta.get("namespace"), meta.get("metricName"), meta.get("metricStat", "Average"))
    if metric == ("AWS/ApplicationELB", "RequestCountPerTarget", "Sum"):
        return Signal("api_requests_per_target_per_s", period)
    if metric == ("AWS/ApplicationELB", "RequestCount", "Sum"):
        return Signal("api_requests_per_s", period)
    raise NotModelled(f"ScaledObject {name}: aws-cloudwatch metric {metric}")


# --- scalingModifiers.formula: the arithmetic subset of expr-lang ----------------------------

_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "ceil": math.ceil, "floor": math.floor, "round": round,
}  # fmt: skip


def compile_formula(text: str, names: set[str]) -> Callable[[Mapping[str, float]], float]:
    """A formula over trigger names: numbers, + - * / % **, parentheses, min max abs ceil floor
    round. Anything else (ternaries, `??`, comparisons) is refused with its name."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise NotModelled(f"formula {text!r}: {error.msg}") from error
    for node in ast.walk(tree):
        allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call,
                   ast.Load, ast.USub, ast.UAdd, *_BINARY)  # fmt: skip
        if not isinstance(node, allowed):
            raise NotModelled(f"formula {text!r}: {type(node).__name__} is not modelled")
        if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCTIONS:
            raise NotModelled(
                f"formula {text!r}: {node.id!r} is not a named trigger {sorted(names)}"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise NotModelled(f"formula {text!r}: constant {node.value!r}")

    def evaluate(node: ast.AST, values: Mapping[str, float]) -> float:
        if isinstance(node, ast.Expression):
            return evaluate(node.body, values)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return float(values[node.id])
        if isinstance(node, ast.UnaryOp):
            inner = evaluate(node.operand, values)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](evaluate(node.left, values), evaluate(node.right, values))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return float(_FUNCTIONS[node.func.id](*(evaluate(a, values) for a in node.args)))

    return lambda values: evaluate(tree, values)
