"""Configuration keys of the data stores: RDS PostgreSQL and ElastiCache.

Each field is one key (see `infra.config.spec.key`); validators are the rules across keys.
"""

from __future__ import annotations

from pydantic import model_validator

from infra.config import checks
from infra.config.rules import broken
from infra.config.sections.common import RETENTION
from infra.config.spec import (
    Bool,
    Int,
    Section,
    Text,
    between,
    key,
    one_of,
    rule,
)

# ElastiCache engine -> (engine version, parameter group family).
CACHE_ENGINES = {"redis": ("7.1", "redis7"), "valkey": ("8.0", "valkey8")}


class DatabaseConfig(Section, title="Database (RDS PostgreSQL)"):
    engine_version: Text = key(
        "dbEngineVersion",
        default="17",
        check=one_of(*checks.POSTGRES_MAJOR_VERSIONS),
        help="PostgreSQL major version; RDS applies minor upgrades.",
    )
    instance_class: Text = key(
        "dbInstanceClass",
        dev="db.t3.micro",
        staging="db.t3.small",
        prod="db.t3.medium",
        check=rule(
            checks.rds_instance_class, "an RDS instance class such as db.t3.medium", "t3.medium"
        ),
        help="RDS instance class.",
    )
    allocated_storage: Int = key(
        "dbAllocatedStorage",
        dev=20,
        staging=50,
        prod=100,
        check=between(20, 65536, " (GiB)"),
        help="Initial gp3 storage.",
    )
    max_allocated_storage: Int = key(
        "dbMaxAllocatedStorage",
        dev=50,
        staging=200,
        prod=500,
        check=between(22, 65536),
        allowed="at least 10% above dbAllocatedStorage, up to 65536 (GiB)",
        help="Storage autoscaling ceiling.",
    )
    multi_az: Bool = key(
        "dbMultiAz",
        dev=False,
        staging=True,
        prod=True,
        help="Synchronous standby in a second AZ.",
    )
    backup_retention_days: Int = key(
        "dbBackupRetentionDays",
        default=7,
        check=between(1, 35),
        help="Days of automated backups (point-in-time recovery).",
    )
    backup_window: Text = key(
        "dbBackupWindow",
        default="03:00-04:00",
        check=rule(
            lambda v: checks.daily_window(v) is not None,
            "hh:mm-hh:mm (UTC), at least 30 minutes",
            "03:00-03:10",
            "3am",
        ),
        help="Daily backup window.",
    )
    maintenance_window: Text = key(
        "dbMaintenanceWindow",
        default="sun:04:00-sun:05:00",
        check=rule(
            lambda v: checks.weekly_window(v) is not None,
            "ddd:hh:mm-ddd:hh:mm (UTC), at least 30 minutes, not overlapping dbBackupWindow",
            "mon:25:00-mon:26:00",
        ),
        help="Weekly maintenance window.",
    )
    performance_insights: Bool = key(
        "dbPerformanceInsights",
        dev=False,
        staging=True,
        prod=True,
        help="Performance Insights (7 days, free tier).",
    )
    log_retention_days: Int = key(
        "dbLogRetentionDays",
        default=90,
        check=RETENTION,
        help="Days the PostgreSQL and upgrade logs RDS exports to CloudWatch Logs are kept.",
    )
    final_snapshot: Bool = key(
        "dbFinalSnapshot",
        dev=False,
        staging=True,
        prod=True,
        help="Take a final snapshot when the instance is deleted.",
    )

    @model_validator(mode="after")
    def _relations(self) -> DatabaseConfig:
        if self.max_allocated_storage * 10 < self.allocated_storage * 11:
            raise broken(
                "dbMaxAllocatedStorage",
                f"{self.max_allocated_storage} is not valid; allowed: at least 10% above "
                f"dbAllocatedStorage ({self.allocated_storage}), up to 65536",
            )
        backup = checks.daily_window(self.backup_window)
        maintenance = checks.weekly_window(self.maintenance_window)
        if backup and maintenance and checks.windows_overlap(backup, maintenance):
            raise broken(
                "dbMaintenanceWindow",
                f"{self.maintenance_window!r} overlaps dbBackupWindow ({self.backup_window!r}); "
                "allowed: non-overlapping windows",
            )
        return self


class CacheConfig(Section, title="Cache (ElastiCache)"):
    engine: Text = key(
        "cacheEngine",
        default="redis",
        check=one_of(*CACHE_ENGINES),
        help="Engine of the replication group (Redis OSS 7.1 or Valkey 8.0).",
    )
    node_type: Text = key(
        "cacheNodeType",
        default="cache.t3.micro",
        check=rule(
            checks.cache_node_type, "an ElastiCache node type such as cache.t3.micro", "cache.t3"
        ),
        help="Node type.",
    )
    nodes: Int = key(
        "cacheNodes",
        dev=1,
        staging=2,
        prod=2,
        check=between(1, 6),
        help="Nodes (primary + replicas); 2 or more enables automatic failover and Multi-AZ.",
    )
    snapshot_retention_days: Int = key(
        "cacheSnapshotRetentionDays",
        dev=0,
        staging=7,
        prod=7,
        check=between(0, 35),
        help="Days daily snapshots are kept (0: none).",
    )

    @property
    def engine_version(self) -> str:
        """Engine version pinned for `engine`."""
        return CACHE_ENGINES[self.engine][0]

    @property
    def failover(self) -> bool:
        """Automatic failover and Multi-AZ need a replica."""
        return self.nodes >= 2
