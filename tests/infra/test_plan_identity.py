"""An existing stack's next `pulumi up` after a refactor: no replacement, no update.

Compares each stack's program with its golden plan (tests/infra/golden.py): every resource of
the golden plan is still registered under the same URN, or under a new one that carries an
alias to the old (the engine then treats it as the same resource), with the same type, name
and inputs; nothing new is deployed except component resources (which have no cloud state);
and every Kubernetes manifest is byte for byte the same.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.infra import golden
from tests.infra.pulumi_harness import STACKS, graph_of

# Changes the current commits intend, by resource name: input paths whose values may differ
# from the golden plan (in the inputs and in the manifest). Emptied when the golden plans are
# rewritten; everything not listed must match exactly, manifests byte for byte.
INTENDED_CHANGES: dict[str, tuple[str, ...]] = {}
MANIFEST_OF: dict[str, str] = {}  # resource name -> its manifest file, for the entries above


def _without(document: dict, paths: tuple[str, ...]) -> dict:
    trimmed = copy.deepcopy(document)
    for path in paths:
        *parents, last = path.split(".")
        node = trimmed
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = "<intended change>"
        else:
            node[last] = "<intended change>"
    return trimmed


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
        intended = INTENDED_CHANGES.get(before["name"], ())
        for field in ("type", "name", "custom"):
            if after[field] != before[field]:
                changed.append((before["urn"], field))
        if _without(after["inputs"], intended) != _without(before["inputs"], intended):
            changed.append((before["urn"], "inputs"))
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
    intended = {MANIFEST_OF[name]: paths for name, paths in INTENDED_CHANGES.items()}
    for filename, before in old["manifests"].items():
        after = new["manifests"][filename]
        if filename not in intended:
            assert after == before, f"{stack}: {filename} changed"
            continue
        paths = intended[filename]
        assert _without(yaml.safe_load(after), paths) == _without(yaml.safe_load(before), paths)
        assert after != before, f"{stack}: {filename}: the intended change is not there"
