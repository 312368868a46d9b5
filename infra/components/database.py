"""Database component: RDS PostgreSQL in the isolated subnets.

Private (no public address, no route out of the VPC), encrypted at rest, TLS forced by its
parameter group, reachable on 5432 only from the security groups given as clients. The master
password is generated and rotated by RDS in Secrets Manager; the program never sees it.

The PostgreSQL and upgrade logs go to CloudWatch Logs. RDS writes into
`/aws/rds/instance/<identifier>/<log>` and creates the group itself, never expiring, if it does
not exist yet; so the groups are created here first, with the stack's retention, and the
instance waits for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.components.security import data_store_security_group
from infra.config import DatabaseConfig
from infra.naming import FINAL_SNAPSHOT_ID_LIMIT, physical_name
from infra.tags import name_tag

POSTGRES_PORT = 5432
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
LOG_EXPORTS = ("postgresql", "upgrade")
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7  # the free tier


@dataclass(frozen=True)
class DatabaseArgs:
    """Inputs of the Database component."""

    settings: DatabaseConfig  # the stack's `db*` keys
    identifier: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    allowed_security_group_ids: Sequence[pulumi.Input[str]]
    deletion_protection: bool
    monitoring_interval: int = 0  # enhanced monitoring, seconds (0: off)
    monitoring_role_arn: pulumi.Input[str] | None = None
    log_kms_key_arn: pulumi.Input[str] | None = None  # encrypts the log groups (staging, prod)
    db_name: str = "agent"
    username: str = "agent"
    port: int = POSTGRES_PORT


class Database(pulumi.ComponentResource):
    """One RDS PostgreSQL instance with its subnet group, parameter group and security group."""

    identifier: pulumi.Output[str]
    address: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: str
    secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        security_group = data_store_security_group(
            name,
            vpc_id=args.vpc_id,
            store="RDS PostgreSQL",
            protocol="PostgreSQL",
            port=args.port,
            client_group_ids=args.allowed_security_group_ids,
            tags=name_tag(args.identifier, "db"),
            opts=child,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(args.subnet_ids),
            description="Isolated database subnets",
            opts=child,
        )
        parameter_group = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{args.settings.engine_version}",
            description="Forces TLS for every connection",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(
                    name="rds.force_ssl", value="1", apply_method="pending-reboot"
                )
            ],
            opts=child,
        )

        # Explicit names: RDS picks the group by name, and `pulumi import` adopts an existing
        # one by it (README: "RDS log groups of existing stacks").
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-logs",
                name=f"/aws/rds/instance/{args.identifier}/{log}",
                retention_in_days=args.settings.log_retention_days,
                kms_key_id=args.log_kms_key_arn,
                opts=child,
            )
            for log in LOG_EXPORTS
        ]

        final_snapshot_identifier = None
        if args.settings.final_snapshot:
            # A fresh suffix per stack lifetime: re-creating and destroying the stack again must
            # not collide with the snapshot the previous destroy left behind.
            suffix = random.RandomId(f"{name}-final-snapshot-suffix", byte_length=4, opts=child)
            final_snapshot_identifier = suffix.hex.apply(
                lambda hex_: physical_name(
                    args.identifier, "final", hex_, limit=FINAL_SNAPSHOT_ID_LIMIT
                )
            )

        instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=args.identifier,
            engine="postgres",
            engine_version=args.settings.engine_version,
            instance_class=args.settings.instance_class,
            db_name=args.db_name,
            username=args.username,
            manage_master_user_password=True,
            port=args.port,
            storage_type="gp3",
            allocated_storage=args.settings.allocated_storage,
            max_allocated_storage=args.settings.max_allocated_storage,
            storage_encrypted=True,
            db_subnet_group_name=subnet_group.name,
            parameter_group_name=parameter_group.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=False,
            ca_cert_identifier=CA_CERTIFICATE,
            multi_az=args.settings.multi_az,
            backup_retention_period=args.settings.backup_retention_days,
            backup_window=args.settings.backup_window,
            maintenance_window=args.settings.maintenance_window,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not args.settings.final_snapshot,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.settings.final_snapshot,
            final_snapshot_identifier=final_snapshot_identifier,
            performance_insights_enabled=args.settings.performance_insights,
            performance_insights_retention_period=(
                PERFORMANCE_INSIGHTS_RETENTION_DAYS if args.settings.performance_insights else None
            ),
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            monitoring_interval=args.monitoring_interval,
            monitoring_role_arn=args.monitoring_role_arn,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=False,
            tags=name_tag(args.identifier),
            opts=pulumi.ResourceOptions(parent=self, depends_on=log_groups),
        )

        self.identifier = instance.identifier
        self.address = instance.address
        self.endpoint = instance.endpoint
        self.port = instance.port
        self.db_name = args.db_name
        self.secret_arn = instance.master_user_secrets.apply(lambda s: s[0].secret_arn)
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "endpoint": self.endpoint,
                "secretArn": self.secret_arn,
                "securityGroupId": self.security_group_id,
            }
        )
