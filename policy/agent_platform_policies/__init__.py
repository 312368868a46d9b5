"""The policies of the agent-platform CrossGuard pack, importable without starting the pack.

`policy/__main__.py` serves `ALL_POLICIES` to the Pulumi CLI; tests call each policy's
`validate` directly.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from . import (
    advisory,
    cluster,
    encryption,
    exposure,
    karpenter,
    operations,
    prod_exposure,
    production,
    tagging,
    workloads,
)

PACK_NAME = "agent-platform"

ALL_POLICIES: list[Policy] = [
    *encryption.POLICIES,
    *exposure.POLICIES,
    *cluster.POLICIES,
    *karpenter.POLICIES,
    *production.POLICIES,
    *operations.POLICIES,
    *prod_exposure.POLICIES,
    *tagging.POLICIES,
    *workloads.POLICIES,
    *advisory.POLICIES,
]

MANDATORY = [p.name for p in ALL_POLICIES if p.enforcement_level == EnforcementLevel.MANDATORY]
ADVISORY = [p.name for p in ALL_POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY]
