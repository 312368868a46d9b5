"""`deployment-has-hpa` accepts a KEDA ScaledObject: KEDA makes and owns the HPA of its target."""

from __future__ import annotations

from agent_platform_policies.workloads import DEPLOYMENT_HPA

from tests.policy import reference_records as rec
from tests.policy.policy_harness import program_graph, violations


def test_a_scaledobject_instead_of_an_hpa_passes():
    graph = rec.good_graph().without("agent-api-hpa").plus(rec.scaled_object())
    assert violations(DEPLOYMENT_HPA, graph) == []
    explicit = rec.good_graph().without("agent-api-hpa").plus(rec.scaled_object(kind="Deployment"))
    assert violations(DEPLOYMENT_HPA, explicit) == []


def test_a_scaledobject_of_another_deployment_or_kind_does_not_count():
    other = rec.good_graph().without("agent-api-hpa").plus(rec.scaled_object("agent-worker"))
    found = violations(DEPLOYMENT_HPA, other)
    assert len(found) == 1
    assert "'agent-api' has no HorizontalPodAutoscaler or KEDA ScaledObject" in found[0].message
    stateful = rec.good_graph().without("agent-api-hpa").plus(rec.scaled_object(kind="StatefulSet"))
    assert len(violations(DEPLOYMENT_HPA, stateful)) == 1


def test_the_program_is_covered_by_its_scaledobjects_once_the_hpas_are_gone():
    # The release after the KEDA migration removes the Pulumi HPAs (retained on delete).
    graph = program_graph("prod").without("workload-api-hpa").without("workload-worker-hpa")
    types = {r.type for r in graph.resources}
    assert "kubernetes:autoscaling/v2:HorizontalPodAutoscaler" not in types
    assert violations(DEPLOYMENT_HPA, graph) == []
    no_worker_scaler = graph.without("autoscaling-worker")
    found = violations(DEPLOYMENT_HPA, no_worker_scaler)
    assert [v.message.split(" has no")[0] for v in found] == ["Deployment 'workload-worker'"]
