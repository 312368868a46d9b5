"""An existing stack's next `pulumi up` after a refactor: no replacement, no update.

Compares each stack's program with its golden plan (tests/infra/golden.py): every resource of
the golden plan is still registered under the same URN, or under a new one that carries an
alias to the old (the engine then treats it as the same resource), with the same type, name
and inputs; nothing new is deployed except component resources (which have no cloud state);
and every Kubernetes manifest is byte for byte the same.
"""

from __future__ import annotations

import pytest

from tests.infra import golden
from tests.infra.pulumi_harness import STACKS, graph_of

# Manifest changes a commit intends, as (file name, a line that differs); empty once the golden
# plans are rewritten. Everything not listed must match byte for byte.
INTENDED_MANIFEST_CHANGES: dict[str, tuple[str, ...]] = {}


@pytest.fixture(scope="module", params=STACKS)
def plans(request):
    stack = request.param
    return stack, golden.load(stack), golden.snapshot(graph_of(stack))


def _by_identity(new: dict) -> dict[str, dict]:
    index = {}
    for resource in new["resources"]:
        index[resource["urn"]] = resource
        for alias in resource["aliases"]:
            index.setdefault(alias, resource)
    return index


def test_every_resource_keeps_its_urn_or_an_alias_to_it(plans):
    stack, old, new = plans
    index = _by_identity(new)
    lost = [r["urn"] for r in old["resources"] if r["urn"] not in index]
    assert lost == [], f"{stack}: resources that would be deleted and recreated: {lost}"


def test_every_resource_keeps_its_type_name_and_inputs(plans):
    stack, old, new = plans
    index = _by_identity(new)
    changed = []
    for before in old["resources"]:
        after = index.get(before["urn"])
        if after is None:
            continue  # reported by the test above
        for field in ("type", "name", "custom", "inputs"):
            if after[field] != before[field]:
                changed.append((before["urn"], field))
    assert changed == [], f"{stack}: resources that would be updated: {changed}"


def test_nothing_new_is_deployed_but_components(plans):
    stack, old, new = plans
    known = {r["urn"] for r in old["resources"]}
    added = [
        r["urn"]
        for r in new["resources"]
        if r["urn"] not in known and not set(r["aliases"]) & known and r["custom"]
    ]
    assert added == [], f"{stack}: new cloud resources: {added}"


def test_manifests_are_byte_for_byte_the_same(plans):
    stack, old, new = plans
    assert sorted(new["manifests"]) == sorted(old["manifests"])
    for filename, before in old["manifests"].items():
        after = new["manifests"][filename]
        allowed = INTENDED_MANIFEST_CHANGES.get(filename, ())
        if not allowed:
            assert after == before, f"{stack}: {filename} changed"
            continue
        differing = set(before.splitlines()) ^ set(after.splitlines())
        unexpected = [line for line in differing if not any(a in line for a in allowed)]
        assert unexpected == [], f"{stack}: {filename} changed: {unexpected}"
