"""The HPA arithmetic against hand-computed cases from the Kubernetes documentation
(Horizontal Pod Autoscaling, "Algorithm details", "Scaling policies", "Stabilization window",
"Default Behavior"; the configurable tolerance blog post of v1.33)."""

from __future__ import annotations

import pytest

from bench.autoscale.hpa import (
    Behavior,
    Controller,
    PodUsage,
    Policy,
    Rules,
    external_replicas,
    resource_replicas,
)


def pods(n: int, usage: float, request: float = 0.5, ready: bool = True) -> list[PodUsage]:
    return [PodUsage(ready, usage, request) for _ in range(n)]


# --- one metric -----------------------------------------------------------------------------


def test_current_200m_against_a_100m_target_doubles_the_replicas():
    # "if the current metric value is 200m, and the desired value is 100m, the number of
    # replicas will be doubled, since 200.0 / 100.0 == 2.0"
    assert resource_replicas(1, pods(1, 0.2), 0.1, "AverageValue") == 2
    assert resource_replicas(3, pods(3, 0.2), 0.1, "AverageValue") == 6


def test_current_50m_against_a_100m_target_halves_the_replicas():
    # "If the current value is instead 50m, you'll halve the number of replicas"
    assert resource_replicas(4, pods(4, 0.05), 0.1, "AverageValue") == 2


def test_utilization_is_a_percentage_of_the_requests():
    # 50 replicas at 90% CPU with a 75% target: 50 x 90 / 75 = 60 (v1.33 tolerance post)
    assert resource_replicas(50, pods(50, 0.45, 0.5), 75, "Utilization") == 60


def test_a_ratio_within_the_tolerance_changes_nothing():
    # ratio 1.05 and 0.95 are within the default 0.1; 1.11 and 0.89 are not
    assert resource_replicas(4, pods(4, 0.105), 0.1, "AverageValue") == 4
    assert resource_replicas(4, pods(4, 0.095), 0.1, "AverageValue") == 4
    assert resource_replicas(4, pods(4, 0.111), 0.1, "AverageValue") == 5  # ceil(4.44)
    assert resource_replicas(10, pods(10, 0.089), 0.1, "AverageValue") == 9  # ceil(8.9)


def test_the_behaviors_tolerance_replaces_the_default_per_direction():
    # scaleUp tolerance 0.01: a 1.05 ratio scales up; scaleDown tolerance 0.2: 0.85 does not
    behavior = Behavior.from_spec({"scaleUp": {"tolerance": 0.01}, "scaleDown": {"tolerance": 0.2}})
    assert resource_replicas(4, pods(4, 0.105), 0.1, "AverageValue", behavior) == 5
    assert resource_replicas(4, pods(4, 0.085), 0.1, "AverageValue", behavior) == 4


def test_unready_pods_count_as_idle_when_scaling_up_and_cannot_flip_the_direction():
    # 2 ready pods at 80% with a 50% target ask for more (1.6); with the 2 pods that are not
    # ready counted at 0% the average is 40% (0.8): the direction flips, so nothing changes.
    mixed = [*pods(2, 0.4, 0.5), *pods(2, 0.0, 0.5, ready=False)]
    assert resource_replicas(4, mixed, 50, "Utilization") == 4
    # 2 ready at 150%, 1 not ready: 300 / 3 = 100% -> ratio 2.0 -> ceil(2.0 x 3) = 6
    mixed = [*pods(2, 0.75, 0.5), *pods(1, 0.0, 0.5, ready=False)]
    assert resource_replicas(3, mixed, 50, "Utilization") == 6
    # scaling down, pods that are not ready are left out: 2 ready at 20% of a 50% target
    mixed = [*pods(2, 0.1, 0.5), *pods(2, 0.0, 0.5, ready=False)]
    assert resource_replicas(4, mixed, 50, "Utilization") == 1  # ceil(0.4 x 2)


def test_external_average_value_divides_the_total_by_the_target():
    # KEDA's AverageValue metrics: 100 waiting with 8 per pod -> ceil(100 / 8) = 13
    assert external_replicas(2, 2, 100, 8, "AverageValue") == 13
    assert external_replicas(13, 13, 100, 8, "AverageValue") == 13  # 100 / 104 within 0.1
    assert external_replicas(0, 0, 3, 8, "AverageValue") == 1


def test_external_value_scales_the_ready_pods_by_the_ratio():
    # Value 30 against 10 with 2 ready pods: ceil(3.0 x 2) = 6
    assert external_replicas(2, 2, 30, 10, "Value") == 6
    assert external_replicas(4, 4, 10.5, 10, "Value") == 4  # 1.05: within the tolerance


# --- the controller: several metrics, stabilization, policies, bounds -----------------------

FREE = Rules(0, (Policy("Percent", 1000, 15),))  # a behavior that limits nothing


def test_several_metrics_take_the_highest_proposal():
    controller = Controller(1, 20, Behavior(FREE, FREE))
    assert controller.reconcile(0, 4, [3, 7, 5]) == 7


def test_the_bounds_apply_first():
    controller = Controller(3, 20, Behavior(FREE, FREE))
    assert controller.reconcile(0, 25, [30]) == 20  # above maxReplicas
    assert controller.reconcile(15, 2, [1]) == 3  # below minReplicas
    assert controller.reconcile(30, 5, [1]) == 3  # never below minReplicas
    assert controller.reconcile(45, 5, [40]) == 20  # never above maxReplicas
    assert controller.reconcile(60, 0, [5]) == 0  # scaled to zero: autoscaling disabled


def test_scale_down_stabilization_keeps_the_highest_recommendation_of_the_window():
    controller = Controller(1, 20, Behavior(FREE, Rules(300, FREE.policies)))
    assert controller.reconcile(0, 10, [10]) == 10
    assert controller.reconcile(60, 10, [8]) == 10  # max(10, 8) over the last 300 s
    assert controller.reconcile(120, 10, [5]) == 10
    assert controller.reconcile(285, 10, [5]) == 10  # the t=0 recommendation is still in
    assert controller.reconcile(300, 10, [5]) == 8  # t=0 is out (newer than now - 300 s count)
    assert controller.reconcile(360, 8, [5]) == 5


def test_scale_up_stabilization_keeps_the_lowest_recommendation_of_the_window():
    controller = Controller(1, 20, Behavior(Rules(60, FREE.policies), FREE))
    assert controller.reconcile(0, 2, [2]) == 2
    assert controller.reconcile(15, 2, [9]) == 2  # min(2, 9) over the last 60 s
    assert controller.reconcile(45, 2, [6]) == 2
    assert controller.reconcile(75, 2, [8]) == 6  # t=0 left the window: min(9, 6, 8)


# scaleDown: Pods 4 / 60 s and Percent 10 / 60 s (the documentation's example)
EXAMPLE_DOWN = (Policy("Pods", 4, 60), Policy("Percent", 10, 60))


def _every_sync(controller: Controller, current: int, desired: int, seconds: int) -> list[int]:
    changes = []
    for now in range(0, seconds, 15):
        new = controller.reconcile(now, current, [desired])
        if new != current:
            changes.append(new)
            current = new
    return changes


def test_scale_down_policies_with_select_max_take_the_biggest_change_each_period():
    # "if there are 80 replicas and the target has to be scaled down to 10 replicas then during
    # the first step 8 replicas will be reduced. In the next iteration when the number of
    # replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8 [...] When the
    # number of replicas falls below 40 the first policy (Pods) is applied"
    controller = Controller(1, 100, Behavior(FREE, Rules(0, EXAMPLE_DOWN, "Max")))
    changes = _every_sync(controller, 80, 10, 15 * 60)
    assert changes == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]


def test_scale_down_policies_with_select_min_take_the_smallest_change():
    controller = Controller(1, 100, Behavior(FREE, Rules(0, EXAMPLE_DOWN, "Min")))
    # 80: Pods -> 76, Percent -> 72: Min keeps 76; 76 -> 72 (Pods 72, Percent int(68.4)=68) ...
    assert _every_sync(controller, 80, 10, 4 * 60) == [76, 72, 68, 64]


def test_a_policy_counts_the_changes_already_made_in_its_period():
    controller = Controller(1, 100, Behavior(FREE, Rules(0, EXAMPLE_DOWN, "Max")))
    assert controller.reconcile(0, 80, [10]) == 72
    assert controller.reconcile(15, 72, [10]) == 72  # period start is still 80: limit 72
    assert controller.reconcile(45, 72, [10]) == 72
    assert controller.reconcile(60, 72, [10]) == 64  # the t=0 change left the 60 s period


def test_disabled_select_policy_never_scales_that_way():
    controller = Controller(1, 100, Behavior(FREE, Rules(0, EXAMPLE_DOWN, "Disabled")))
    assert _every_sync(controller, 80, 10, 5 * 60) == []


def test_default_scale_up_doubles_or_adds_four_pods_per_15_seconds():
    # "Default Behavior": scaleUp Percent 100 and Pods 4 per 15 s, selectPolicy Max
    controller = Controller(1, 100, Behavior())
    assert controller.reconcile(0, 1, [10]) == 5  # max(1 + 4, 1 x 2)
    assert controller.reconcile(15, 5, [40]) == 10  # max(5 + 4, 5 x 2)
    assert controller.reconcile(30, 10, [40]) == 20


def test_the_platforms_behavior_adds_at_most_double_or_four_pods_a_minute():
    # README "How it scales": up by 100% or 4 pods per 60 s (the larger), down 50% per 60 s
    # after 300 s of stabilization
    spec = {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 60},
            {"type": "Pods", "value": 4, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 50, "periodSeconds": 60}]},
    }  # fmt: skip
    controller = Controller(3, 20, Behavior.from_spec(spec))
    assert controller.reconcile(0, 3, [14]) == 7  # max(3 + 4, 3 x 2)
    assert controller.reconcile(15, 7, [14]) == 7  # 4 already added in this minute
    assert controller.reconcile(60, 7, [14]) == 14  # max(7 + 4, 7 x 2) = 14
    assert controller.reconcile(75, 14, [3]) == 14  # stabilized: the window holds 14
    assert controller.reconcile(375, 14, [3]) == 7  # window passed; half per minute
    assert controller.reconcile(435, 7, [3]) == 3  # int(7 x 0.5) = 3


@pytest.mark.parametrize("select", ["Max", "Min"])
def test_one_policy_gives_the_same_limit_whatever_the_select(select):
    rules = Rules(0, (Policy("Pods", 2, 60),), select)
    controller = Controller(1, 50, Behavior(rules, FREE))
    assert controller.reconcile(0, 4, [20]) == 6
