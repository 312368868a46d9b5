"""The Kubernetes HorizontalPodAutoscaler (autoscaling/v2), as its documentation and controller
describe it ("Algorithm details" of the Horizontal Pod Autoscaling page;
pkg/controller/podautoscaler in kubernetes/kubernetes):

- per metric, desired = ceil(current x metric / target), unless the ratio is within the
  tolerance (0.1, or the behavior's per-direction `tolerance`) of 1;
- Resource metrics average over ready pods; pods not yet ready are set aside and, when the
  metric asks for more pods, counted at 0% (then the change is dropped if it would flip
  direction or fall within the tolerance);
- External AverageValue: desired = ceil(value / target), ratio against the pods that exist;
  External Value: desired = ceil(value / target x ready pods);
- several metrics: the highest desired count wins;
- behavior: the stabilization window keeps the lowest recommendation of its window when scaling
  up and the highest when scaling down; policies limit the change within `periodSeconds`
  (counted from the scale events of that period), selectPolicy Max takes the policy that allows
  the biggest change, Min the smallest, Disabled none; then minReplicas..maxReplicas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOLERANCE = 0.1
SYNC_PERIOD_S = 15  # --horizontal-pod-autoscaler-sync-period


@dataclass(frozen=True)
class Policy:
    """One scaling policy: `value` pods or percent within `period_s` seconds."""

    type: str  # Pods | Percent
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    """The HPAScalingRules of one direction."""

    stabilization_s: int
    policies: tuple[Policy, ...]
    select: str = "Max"  # Max | Min | Disabled
    tolerance: float = DEFAULT_TOLERANCE

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None, default: Rules) -> Rules:
        """Rules from a manifest's scaleUp/scaleDown; what it leaves out takes `default`'s."""
        if not spec:
            return default
        policies = tuple(
            Policy(p["type"], int(p["value"]), int(p["periodSeconds"]))
            for p in spec.get("policies", [])
        )
        tolerance = spec.get("tolerance")
        return cls(
            stabilization_s=int(spec.get("stabilizationWindowSeconds", default.stabilization_s)),
            policies=policies or default.policies,
            select=spec.get("selectPolicy", default.select),
            tolerance=DEFAULT_TOLERANCE if tolerance is None else float(tolerance),
        )


# The documented defaults ("Default Behavior"; pkg/apis/autoscaling/v2/defaults.go).
DEFAULT_UP = Rules(0, (Policy("Percent", 100, 15), Policy("Pods", 4, 15)), "Max")
DEFAULT_DOWN = Rules(300, (Policy("Percent", 100, 15),), "Max")


@dataclass(frozen=True)
class Behavior:
    """spec.behavior of an HPA (an HPA without one uses the defaults above)."""

    up: Rules = DEFAULT_UP
    down: Rules = DEFAULT_DOWN

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> Behavior:
        spec = spec or {}
        return cls(
            Rules.from_spec(spec.get("scaleUp"), DEFAULT_UP),
            Rules.from_spec(spec.get("scaleDown"), DEFAULT_DOWN),
        )

    def within_tolerance(self, ratio: float) -> bool:
        """The usage ratio is close enough to 1 that no change is made."""
        return 1.0 - self.down.tolerance <= ratio <= 1.0 + self.up.tolerance


@dataclass(frozen=True)
class PodUsage:
    """One pod of the target as the HPA sees it: ready or not, and its usage of a resource."""

    ready: bool
    usage: float = 0.0  # cores or MiB
    request: float = 1.0  # same unit as usage


def _milli(value: float) -> int:
    return round(value * 1000)


def resource_replicas(
    current: int,
    pods: Sequence[PodUsage],
    target: float,
    target_type: str,
    behavior: Behavior = Behavior(),
) -> int:
    """Desired replicas for a Resource metric (Utilization in percent, or AverageValue)."""
    ready = [p for p in pods if p.ready]
    unready = len(pods) - len(ready)
    if not ready:
        return current  # no metrics: the controller skips this metric

    def ratio(samples: Sequence[PodUsage]) -> float:
        # As the controller: milli-units in integers, utilization truncated to a whole percent.
        usage = sum(_milli(p.usage) for p in samples)
        if target_type == "Utilization":
            requests = sum(_milli(p.request) for p in samples)
            return (usage * 100 // requests) / target
        return (usage // len(samples)) / _milli(target)

    usage_ratio = ratio(ready)
    if not (unready and usage_ratio > 1.0):
        if behavior.within_tolerance(usage_ratio):
            return current
        return math.ceil(usage_ratio * len(ready))
    # Scale-up with unready pods: count them at 0 usage, then re-check direction and tolerance.
    with_unready = [*ready, *(PodUsage(False, 0.0, p.request) for p in pods if not p.ready)]
    new_ratio = ratio(with_unready)
    if behavior.within_tolerance(new_ratio) or new_ratio < 1.0:
        return current
    proposal = math.ceil(new_ratio * len(with_unready))
    return current if proposal < current else proposal


def external_replicas(
    current: int,
    ready: int,
    value: float,
    target: float,
    target_type: str,
    behavior: Behavior = Behavior(),
) -> int:
    """Desired replicas for an External metric (AverageValue per pod, or Value)."""
    if target_type == "AverageValue":
        usage_ratio = value / (target * current) if current else math.inf
        if current and behavior.within_tolerance(usage_ratio):
            return current
        return math.ceil(value / target)
    usage_ratio = value / target
    if current == 0:
        return math.ceil(usage_ratio)
    if behavior.within_tolerance(usage_ratio):
        return current
    return math.ceil(usage_ratio * ready)


@dataclass
class _Event:
    at: float
    change: int


@dataclass
class Controller:
    """One HPA's state across syncs: its recommendations and scale events."""

    min_replicas: int
    max_replicas: int
    behavior: Behavior = field(default_factory=Behavior)
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[_Event] = field(default_factory=list)
    down_events: list[_Event] = field(default_factory=list)

    def reconcile(self, now: float, current: int, proposals: Sequence[int]) -> int:
        """The replica count after one sync, given each metric's desired count."""
        if current == 0 and self.min_replicas != 0:
            return 0  # autoscaling is disabled while the target is scaled to zero
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            desired = self._normalize(now, current, max(proposals, default=current))
        if desired != current:
            events = self.up_events if desired > current else self.down_events
            events.append(_Event(now, abs(desired - current)))
            self._forget_old_events(now)
        return desired

    def _normalize(self, now: float, current: int, desired: int) -> int:
        stabilized = self._stabilize(now, current, desired)
        return self._limit_rate(now, current, stabilized)

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        up_cutoff = now - self.behavior.up.stabilization_s
        down_cutoff = now - self.behavior.down.stabilization_s
        if not self.recommendations and self.behavior.down.stabilization_s > 0:
            self.recommendations.append((now, current))  # maybeInitScaleDownStabilizationWindow
        up, down = desired, desired
        for at, recommendation in self.recommendations:
            if at > up_cutoff:
                up = min(up, recommendation)
            if at > down_cutoff:
                down = max(down, recommendation)
        self.recommendations = [
            (at, r) for at, r in self.recommendations if at > min(up_cutoff, down_cutoff)
        ]
        self.recommendations.append((now, desired))
        return min(max(current, up), down)

    def _limit_rate(self, now: float, current: int, desired: int) -> int:
        if desired > current:
            limit = max(self._up_limit(now, current), current)
            return min(desired, self.max_replicas, limit)
        if desired < current:
            limit = min(self._down_limit(now, current), current)
            return max(desired, self.min_replicas, limit)
        return desired

    def _changed_within(self, events: list[_Event], now: float, period_s: int) -> int:
        return sum(e.change for e in events if e.at > now - period_s)

    def _period_start(self, now: float, current: int, period_s: int) -> int:
        added = self._changed_within(self.up_events, now, period_s)
        removed = self._changed_within(self.down_events, now, period_s)
        return current - added + removed

    def _up_limit(self, now: float, current: int) -> int:
        rules = self.behavior.up
        if rules.select == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(now, current, policy.period_s)
            if policy.type == "Pods":
                proposals.append(start + policy.value)
            else:
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
        return (min if rules.select == "Min" else max)(proposals)

    def _down_limit(self, now: float, current: int) -> int:
        rules = self.behavior.down
        if rules.select == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(now, current, policy.period_s)
            if policy.type == "Pods":
                proposals.append(start - policy.value)
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        return (max if rules.select == "Min" else min)(proposals)

    def _forget_old_events(self, now: float) -> None:
        longest = max(
            (p.period_s for p in (*self.behavior.up.policies, *self.behavior.down.policies)),
            default=0,
        )
        self.up_events = [e for e in self.up_events if e.at > now - longest]
        self.down_events = [e for e in self.down_events if e.at > now - longest]
