"""Prod resilience: deletion protection, backups, Multi-AZ.

These apply when the resource's AWS provider tags it `environment=prod` (infra/tags.py puts
the stack's environment into the provider's default tags), or, without such a tag, when the
stack is named `prod`.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .props import UNKNOWN, get, is_prod, is_true, number, resource_environment

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"

MIN_BACKUP_RETENTION_DAYS = 7
MIN_CACHE_SNAPSHOT_DAYS = 1


def _in_prod(args: ResourceValidationArgs) -> bool:
    return is_prod(resource_environment(args.provider))


def _require_true(args: ResourceValidationArgs, report: ReportViolation, prop: str, why: str):
    value = get(args.props, prop)
    if value is not UNKNOWN and not is_true(value):
        report(f"prod {args.name!r} {why}: set {prop}=true.")


def _deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _in_prod(args):
        return
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER):
        _require_true(args, report, "deletionProtection", "can be deleted by one command")
    elif args.resource_type == LOAD_BALANCER:
        _require_true(args, report, "enableDeletionProtection", "can be deleted by one command")


def _at_least(args, report, prop: str, minimum: int, unit: str) -> None:
    value = get(args.props, prop)
    if value is UNKNOWN:
        return
    days = number(value) or 0
    if days < minimum:
        report(f"prod {args.name!r} keeps {days:g} {unit}: set {prop} to at least {minimum}.")


def _backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _in_prod(args):
        return
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER):
        _at_least(
            args, report, "backupRetentionPeriod", MIN_BACKUP_RETENTION_DAYS, "days of backups"
        )
        if is_true(get(args.props, "skipFinalSnapshot")):
            report(
                f"prod {args.name!r} is deleted without a final snapshot: "
                "set skipFinalSnapshot=false and a finalSnapshotIdentifier."
            )
    elif args.resource_type == REPLICATION_GROUP:
        _at_least(
            args, report, "snapshotRetentionLimit", MIN_CACHE_SNAPSHOT_DAYS, "days of snapshots"
        )


def _multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _in_prod(args):
        return
    if args.resource_type == RDS_INSTANCE:
        _require_true(args, report, "multiAz", "has no standby in a second AZ")
    elif args.resource_type == REPLICATION_GROUP:
        nodes = number(get(args.props, "numCacheClusters"))
        if nodes is not None and nodes < 2:
            report(f"prod {args.name!r} has {nodes:g} node: set numCacheClusters to at least 2.")
        _require_true(args, report, "automaticFailoverEnabled", "does not fail over")
        _require_true(args, report, "multiAzEnabled", "keeps its replicas in one AZ")


PROD_DELETION_PROTECTION = ResourceValidationPolicy(
    name="prod-deletion-protection",
    description="In prod, RDS and the load balancer have deletion protection.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_deletion_protection,
)
PROD_BACKUPS = ResourceValidationPolicy(
    name="prod-backups",
    description=f"In prod, RDS keeps at least {MIN_BACKUP_RETENTION_DAYS} days of backups and a "
    "final snapshot; ElastiCache keeps daily snapshots.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_backups,
)
PROD_MULTI_AZ = ResourceValidationPolicy(
    name="prod-multi-az",
    description="In prod, RDS is Multi-AZ and ElastiCache has a replica with automatic failover "
    "in another AZ.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_multi_az,
)

POLICIES = [PROD_DELETION_PROTECTION, PROD_BACKUPS, PROD_MULTI_AZ]
