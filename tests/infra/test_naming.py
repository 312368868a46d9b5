"""Every physical name fits its AWS limit, for committed stacks and long review-stack names."""

from __future__ import annotations

import re

import pytest

from infra.naming import FINAL_SNAPSHOT_ID_LIMIT, NAME_RULES, physical_name
from infra.offline.mocking import Graph
from tests.infra.pulumi_harness import run_program

LONG_REVIEW_STACK = "pr-" + "7" * 60
NAMED_STACKS = ("dev", "prod", "pr-123456", LONG_REVIEW_STACK)
_GRAPHS: dict[str, Graph] = {}


def graph_for(stack: str) -> Graph:
    if stack not in _GRAPHS:
        _GRAPHS[stack] = run_program(stack)
    return _GRAPHS[stack]


def physical_names(graph: Graph):
    """(resource, name, limit, pattern) for every name AWS will see, auto-names included."""
    for resource in graph.resources:
        rule = NAME_RULES.get(resource.type)
        if rule is None:
            continue
        if rule.prop in resource.inputs:
            yield resource, resource.get(rule.prop), rule.limit, rule.pattern
        elif rule.prefix_prop in resource.inputs:
            yield resource, resource.get(rule.prefix_prop), rule.prefix_limit, None
        else:
            # Pulumi appends "-" and 7 random lowercase hex characters.
            yield resource, f"{resource.name}-abcdef0", rule.limit, rule.pattern


@pytest.mark.parametrize("stack", NAMED_STACKS)
def test_every_name_fits_its_limit(stack):
    checked = 0
    for resource, name, limit, pattern in physical_names(graph_for(stack)):
        checked += 1
        assert len(name) <= limit, f"{resource.type} {name!r} is longer than {limit}"
        if pattern is not None:
            assert pattern.match(name), f"{resource.type} {name!r} does not match {pattern}"
    assert checked >= 10


@pytest.mark.parametrize("stack", NAMED_STACKS)
def test_data_store_identifiers_are_explicit_and_derived_from_project_and_stack(stack):
    graph = graph_for(stack)
    db = graph.one("aws:rds/instance:Instance").get("identifier")
    group = graph.one("aws:elasticache/replicationGroup:ReplicationGroup").get("replicationGroupId")
    assert db.startswith("agent-platform-") and group.startswith("agent-platform-")
    assert len(group) <= 40 and len(db) <= 63
    if len(f"agent-platform-{stack}") <= 40:
        assert db == group == f"agent-platform-{stack}"


def test_the_final_snapshot_identifier_fits():
    db = run_program(LONG_REVIEW_STACK, {"dbFinalSnapshot": True}).one("aws:rds/instance:Instance")
    identifier = db.get("finalSnapshotIdentifier")
    assert len(identifier) <= FINAL_SNAPSHOT_ID_LIMIT
    assert re.fullmatch(r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]", identifier)


@pytest.mark.parametrize("stack", NAMED_STACKS)
def test_waf_metric_names_are_valid(stack):
    acl = graph_for(stack).one("aws:wafv2/webAcl:WebAcl")
    names = [acl.get("visibilityConfig")["metricName"]]
    names += [rule["visibilityConfig"]["metricName"] for rule in acl.get("rules")]
    for name in names:
        assert re.fullmatch(r"[\w#:.\-/]{1,255}", name), name


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_logical_names_are_unique_so_the_render_can_name_parents(stack):
    names = [r.name for r in graph_for(stack).resources]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_every_resource_is_parented_to_its_component(stack):
    graph = graph_for(stack)
    top_level = {r.type for r in graph.resources if r.parent_urn is None}
    assert top_level == {
        "pulumi:providers:aws",
        "agent-platform:infra:Network",
        "agent-platform:infra:Cluster",
        "agent-platform:infra:Database",
        "agent-platform:infra:Cache",
        "agent-platform:infra:LoadBalancer",
        "agent-platform:infra:Registry",
        "agent-platform:infra:Addons",
        "agent-platform:infra:Karpenter",
        "agent-platform:infra:Workload",
        "agent-platform:infra:Sinks",
        "agent-platform:infra:Monitoring",
        "agent-platform:infra:Keda",
    }


def test_physical_names_are_lowercase_and_truncated_with_a_stable_hash():
    assert physical_name("Agent-Platform", "Dev", limit=40) == "agent-platform-dev"
    long_a = physical_name("agent-platform", "pr-" + "1" * 50, limit=40)
    long_b = physical_name("agent-platform", "pr-" + "1" * 49 + "2", limit=40)
    assert len(long_a) == len(long_b) == 40
    assert long_a != long_b
    assert long_a == physical_name("agent-platform", "pr-" + "1" * 50, limit=40)
    assert physical_name("9-lives", limit=10) == "lives"
