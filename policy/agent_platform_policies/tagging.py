"""Every taggable AWS resource carries the project's tags.

The program tags through the AWS provider's `defaultTags` (infra/tags.py), so a resource's own
`tags` input holds only its `Name`. The policy merges the provider's default tags with the
resource's tags, as AWS does; it needs neither `tagsAll` (unknown during a preview) nor a run.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .props import UNKNOWN, default_tags, get

REQUIRED_TAGS = ("project", "stack", "environment", "managed-by")

# Types that take tags although a program may pass none (every other AWS type is recognised as
# taggable by a `tags`/`tagsAll` property).
TAGGABLE = frozenset(
    {
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ec2/eip:Eip",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ecr/repository:Repository",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:lb/listener:Listener",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:rds/instance:Instance",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:wafv2/webAcl:WebAcl",
    }
)


def _taggable(args: ResourceValidationArgs) -> bool:
    if not args.resource_type.startswith("aws:"):
        return False
    return args.resource_type in TAGGABLE or any(p in args.props for p in ("tags", "tagsAll"))


def _own_tags(props) -> dict | None:
    """The resource's tags (`tagsAll` when known, else `tags`); None when not known yet."""
    tags_all = get(props, "tagsAll")
    if isinstance(tags_all, Mapping):
        return {k: get(tags_all, k) for k in tags_all}
    tags = get(props, "tags", default={})
    if tags is UNKNOWN:
        return None
    return {k: get(tags, k) for k in tags} if isinstance(tags, Mapping) else {}


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _taggable(args):
        return
    own = _own_tags(args.props)
    if own is None:
        return  # judged again by `pulumi up`, once the tags are known
    provider_tags = default_tags(args.provider.props) if args.provider else {}
    tags = {**provider_tags, **own}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        report(
            f"{args.name!r} lacks tags {', '.join(missing)}: set them in the AWS provider's "
            "defaultTags (infra/tags.py) or on the resource."
        )


REQUIRED_TAGS_POLICY = ResourceValidationPolicy(
    name="required-tags",
    description=f"Every taggable AWS resource carries {', '.join(REQUIRED_TAGS)} (directly or "
    "through its provider's defaultTags).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_required_tags,
)

POLICIES = [REQUIRED_TAGS_POLICY]
