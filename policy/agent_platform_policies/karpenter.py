"""Karpenter: what its EC2NodeClasses launch is hardened, and prod NodePools have a ceiling.

- Every EC2NodeClass requires IMDSv2 (httpTokens required) with a hop limit of 1, so pods on
  the pod network cannot take the node role's credentials, and encrypts every EBS volume it
  declares (a node class without blockDeviceMappings gets the AMI's unencrypted default root
  volume unless the account encrypts by default, so it must declare its root volume).
- In prod every NodePool sets `spec.limits` on cpu and memory: without them a runaway scale-out
  (a bug, a flood) launches instances until an EC2 quota stops it.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .props import UNKNOWN, get, is_prod, is_true, items, number, stack_environment

NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
MAX_HOP_LIMIT = 1


def _node_class(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != NODE_CLASS:
        return
    name, spec = args.name, get(args.props, "spec")
    if spec is UNKNOWN:
        return
    tokens = get(spec, "metadataOptions", "httpTokens")
    if tokens is not UNKNOWN and tokens != "required":
        report(f"EC2NodeClass {name!r} allows IMDSv1: set metadataOptions.httpTokens='required'.")
    hops = get(spec, "metadataOptions", "httpPutResponseHopLimit")
    if hops is not UNKNOWN and (number(hops) or 0) != MAX_HOP_LIMIT:
        report(
            f"EC2NodeClass {name!r} lets pods reach the instance metadata (hop limit "
            f"{hops}): set metadataOptions.httpPutResponseHopLimit={MAX_HOP_LIMIT}."
        )
    mappings = get(spec, "blockDeviceMappings")
    if mappings is UNKNOWN:
        return
    if not items(mappings):
        report(
            f"EC2NodeClass {name!r} declares no blockDeviceMappings: declare the root volume "
            "with ebs.encrypted=true."
        )
    for mapping in items(mappings):
        encrypted = get(mapping, "ebs", "encrypted")
        if encrypted is not UNKNOWN and not is_true(encrypted):
            device = get(mapping, "deviceName")
            report(f"EC2NodeClass {name!r} leaves {device} unencrypted: set ebs.encrypted=true.")


def _prod_pool_limits(args: StackValidationArgs, report: ReportViolation) -> None:
    if not is_prod(stack_environment(args.resources)):
        return
    for pool in args.resources:
        if pool.resource_type != NODE_POOL:
            continue
        limits = get(pool.props, "spec", "limits")
        if limits is UNKNOWN:
            continue
        missing = [r for r in ("cpu", "memory") if get(limits, r) in (None, "")]
        if missing:
            report(
                f"prod NodePool {pool.name!r} has no {' or '.join(missing)} limit: set "
                "spec.limits.cpu and spec.limits.memory (a ceiling on what it launches).",
                pool.urn,
            )


KARPENTER_NODE_CLASS_HARDENED = ResourceValidationPolicy(
    name="karpenter-node-class-hardened",
    description="Karpenter EC2NodeClasses require IMDSv2 with hop limit 1 and encrypt their "
    "volumes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_node_class,
)
PROD_NODE_POOL_LIMITS = StackValidationPolicy(
    name="prod-node-pool-limits",
    description="In prod, every Karpenter NodePool limits the cpu and memory it may launch.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_prod_pool_limits,
)

POLICIES = [KARPENTER_NODE_CLASS_HARDENED, PROD_NODE_POOL_LIMITS]
