"""EKS: nodes require IMDSv2, the control plane logs to CloudWatch.

Under `pulumi preview` the pulumi-eks components' children (the aws:eks cluster, node groups,
launch templates) are checked; the components' own inputs are checked too, which is all that
a run under mocks (and the first preview of a component) shows.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .props import UNKNOWN, get, is_true, items

EKS_COMPONENT = "eks:index:Cluster"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
MANAGED_NODE_GROUP = "eks:index:ManagedNodeGroup"
SELF_MANAGED_NODE_GROUPS = ("eks:index:NodeGroup", "eks:index:NodeGroupV2")
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"

REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")


def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind, name, props = args.resource_type, args.name, args.props
    if kind == MANAGED_NODE_GROUP:
        if get(props, "launchTemplate"):
            return  # the template is checked on its own
        enabled = get(props, "enableIMDSv2")
        if enabled is not UNKNOWN and not is_true(enabled):
            report(f"Node group {name!r} allows IMDSv1: set enableIMDSv2=true.")
    elif kind == EKS_COMPONENT:
        skip = get(props, "skipDefaultNodeGroup")
        if skip is not UNKNOWN and not is_true(skip):
            report(
                f"EKS cluster {name!r} creates a default node group whose metadata options "
                "cannot be set: set skipDefaultNodeGroup=true and add a ManagedNodeGroup with "
                "enableIMDSv2=true."
            )
    elif kind in SELF_MANAGED_NODE_GROUPS:
        report(
            f"Self-managed node group {name!r} cannot be made to require IMDSv2 from its "
            "inputs: use a ManagedNodeGroup with enableIMDSv2=true."
        )
    elif kind == EKS_NODE_GROUP:
        if get(props, "launchTemplate") is None:
            report(
                f"EKS node group {name!r} uses EKS's default launch template, which allows "
                "IMDSv1: give it a launch template with metadataOptions.httpTokens='required'."
            )
    elif kind in (LAUNCH_TEMPLATE, INSTANCE):
        tokens = get(props, "metadataOptions", "httpTokens")
        if tokens is not UNKNOWN and tokens != "required":
            report(f"{name!r} allows IMDSv1: set metadataOptions.httpTokens='required'.")


def _control_plane_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (EKS_COMPONENT, EKS_CLUSTER):
        return
    enabled = get(args.props, "enabledClusterLogTypes", default=[])
    if enabled is UNKNOWN:
        return
    missing = [t for t in REQUIRED_LOG_TYPES if t not in items(enabled)]
    if missing and UNKNOWN not in items(enabled):
        report(
            f"EKS cluster {args.name!r} does not log {', '.join(missing)}: set "
            f"enabledClusterLogTypes to include {', '.join(REQUIRED_LOG_TYPES)}."
        )


NODES_REQUIRE_IMDSV2 = ResourceValidationPolicy(
    name="nodes-require-imdsv2",
    description="Cluster nodes require IMDSv2 (session tokens) for the instance metadata service.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_imdsv2,
)
EKS_CONTROL_PLANE_LOGGING = ResourceValidationPolicy(
    name="eks-control-plane-logging",
    description="The EKS control plane sends its api, audit and authenticator logs to CloudWatch.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_control_plane_logs,
)

POLICIES = [NODES_REQUIRE_IMDSV2, EKS_CONTROL_PLANE_LOGGING]
