"""Physical names and the AWS name-length limits, in one place.

Most resources are auto-named by Pulumi (logical name + "-" + 7 random characters), which keeps
replacements safe (create-before-delete never collides). Data stores, whose identifiers operators
look for, get explicit names built from project and stack by `physical_name`. `NAME_RULES` lists
the limits the tests check every rendered resource against.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

AUTONAME_SUFFIX = 8  # Pulumi auto-naming appends "-" and 7 random characters
NAME_PREFIX_SUFFIX = 26  # the AWS provider appends 26 characters to a name_prefix

_LOWER_HYPHEN = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*(?<!-)$")
_ALNUM_HYPHEN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?!-))*(?<!-)$")


@dataclass(frozen=True)
class NameRule:
    """Where a resource type keeps its physical name and what AWS accepts there."""

    prop: str
    limit: int
    pattern: re.Pattern[str] | None = None
    prefix_prop: str = "namePrefix"

    @property
    def prefix_limit(self) -> int:
        """Longest `name_prefix` AWS accepts (the provider pads it to `limit`)."""
        return self.limit - NAME_PREFIX_SUFFIX

    @property
    def logical_limit(self) -> int:
        """Longest logical name that still fits once Pulumi auto-names it."""
        return self.limit - AUTONAME_SUFFIX


NAME_RULES: dict[str, NameRule] = {
    "aws:lb/loadBalancer:LoadBalancer": NameRule("name", 32, _ALNUM_HYPHEN),
    "aws:lb/targetGroup:TargetGroup": NameRule("name", 32, _ALNUM_HYPHEN),
    "aws:elasticache/replicationGroup:ReplicationGroup": NameRule(
        "replicationGroupId", 40, _LOWER_HYPHEN
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": NameRule("name", 255, _LOWER_HYPHEN),
    "aws:rds/instance:Instance": NameRule(
        "identifier", 63, _LOWER_HYPHEN, prefix_prop="identifierPrefix"
    ),
    "aws:rds/subnetGroup:SubnetGroup": NameRule("name", 255, _LOWER_HYPHEN),
    "aws:rds/parameterGroup:ParameterGroup": NameRule("name", 255, _LOWER_HYPHEN),
    "aws:iam/role:Role": NameRule("name", 64),
    "aws:iam/policy:Policy": NameRule("name", 128),
    "aws:ec2/securityGroup:SecurityGroup": NameRule("name", 255),
    "aws:wafv2/webAcl:WebAcl": NameRule("name", 128),
    "aws:cloudwatch/logGroup:LogGroup": NameRule("name", 512),
    "aws:eks/cluster:Cluster": NameRule("name", 100),
    "eks:index:Cluster": NameRule("name", 100),
    "aws:sqs/queue:Queue": NameRule("name", 80, re.compile(r"^[A-Za-z0-9_-]+$")),
    "aws:ecr/repository:Repository": NameRule(
        "name", 256, re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": NameRule("name", 128),
    "aws:kms/alias:Alias": NameRule("name", 256, re.compile(r"^alias/[A-Za-z0-9/_-]+$")),
    "aws:s3/bucket:Bucket": NameRule(
        "bucket", 63, re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"), prefix_prop="bucketPrefix"
    ),
    "aws:sns/topic:Topic": NameRule("name", 256, _ALNUM_HYPHEN),
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameRule("name", 255),
    "aws:cloudwatch/dashboard:Dashboard": NameRule(
        "dashboardName", 255, re.compile(r"^[A-Za-z0-9_-]+$")
    ),
    "aws:amp/workspace:Workspace": NameRule("alias", 100),
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace": NameRule(
        "name", 64, re.compile(r"^[0-9A-Za-z][-.0-9A-Z_a-z]*$")
    ),
}

# Not a name AWS stores under a resource type, but limited all the same.
FINAL_SNAPSHOT_ID_LIMIT = 255


def physical_name(*parts: str, limit: int) -> str:
    """A lowercase, hyphenated name from `parts` that fits `limit`.

    Too-long names keep their start and end in a short hash of the full name, so two long stack
    names that share a prefix still get distinct, stable names.
    """
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name) or "x"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    head = name[: limit - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"
