"""What a preview shows: values not known yet are skipped, prod is told by the provider's tags."""

from __future__ import annotations

import json

import pytest
from agent_platform_policies import ALL_POLICIES
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE

import tests.policy.reference_records as rec
from tests.policy.policy_harness import (
    PolicyGraph,
    aws_provider,
    default_tags,
    resource,
    violations,
)

POLICIES = {p.name: p for p in ALL_POLICIES}


def _rds(provider, **inputs):
    return resource("dev", "aws:rds/instance:Instance", "db", inputs, provider=provider)


@pytest.mark.parametrize(
    ("policy", "record"),
    [
        ("rds-storage-encrypted", _rds(rec.PROVIDER, storageEncrypted=UNKNOWN_BOOLEAN_VALUE)),
        ("required-tags", _rds(aws_provider("dev", None), tags=UNKNOWN_OBJECT_VALUE)),
        ("eks-secrets-encrypted", rec.eks_component(encryptionConfigKeyArn=UNKNOWN_STRING_VALUE)),
        (
            "no-latest-image-tag",
            rec.deployment(containers=[rec.container(image=UNKNOWN_STRING_VALUE)]),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_unknown_values_are_left_for_the_update(policy, record):
    provider = aws_provider("dev", None) if policy == "required-tags" else rec.PROVIDER
    graph = PolicyGraph("dev", (provider, record))
    assert violations(POLICIES[policy], graph) == []


def test_prod_rules_follow_the_provider_environment_tag():
    unprotected = {"deletionProtection": False}
    dev_tagged = aws_provider("dev", default_tags("dev", "dev"))
    prod_tagged = aws_provider("prod", default_tags("prod", "prod"))
    policy = POLICIES["prod-deletion-protection"]
    dev_db, prod_db = _rds(dev_tagged, **unprotected), _rds(prod_tagged, **unprotected)
    assert violations(policy, PolicyGraph("dev", (dev_tagged, dev_db))) == []
    # The tag decides, whatever the stack is called.
    found = violations(policy, PolicyGraph("x", (prod_tagged, prod_db)))
    assert [v.urn for v in found] == [prod_db.urn]


def test_prod_rules_fall_back_to_the_stack_name(monkeypatch):
    untagged = aws_provider("prod", {"project": "agent-platform"})
    graph = PolicyGraph("prod", (untagged, _rds(untagged, deletionProtection=False)))
    policy = POLICIES["prod-deletion-protection"]
    monkeypatch.setenv("PULUMI_STACK", "dev")
    assert violations(policy, graph) == []
    monkeypatch.setenv("PULUMI_STACK", "prod")
    assert [v.urn for v in violations(policy, graph)] == [graph.resources[1].urn]


def test_default_tags_are_read_from_the_providers_json_encoding():
    provider = aws_provider("dev", default_tags("dev", "dev"))
    assert json.loads(provider.raw_inputs["defaultTags"])["tags"]["managed-by"] == "pulumi"
    graph = PolicyGraph("dev", (provider, _rds(provider, tags={"Name": "db"})))
    assert violations(POLICIES["required-tags"], graph) == []
