"""Sinks component: where the stack's telemetry lands, created before what sends it.

- A customer-managed KMS key (rotating) for the alert topic and, with `logKmsEncryption`, the
  stack's log groups. Its policy lets CloudWatch Logs use it for this account's log groups and
  lets CloudWatch alarms and the Prometheus service publish to a topic encrypted with it (the
  AWS-managed SNS key would refuse both).
- The S3 buckets the ALB's access logs and the WAF's logs are delivered to (buckets.py).
- The container log group (Fluent Bit writes to it) with the stack's retention.
- RDS enhanced monitoring's role. Its data goes to the account-wide `RDSOSMetrics` log group,
  which RDS creates and which this program never manages: stacks share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.observability.buckets import (
    LogBucket,
    alb_log_statements,
    vended_log_statements,
)
from infra.config import OperationsConfig
from infra.naming import physical_name

WAF_LOG_PREFIX = "aws-waf-logs-"  # WAF accepts only destinations named so
BUCKET_PREFIX_LIMIT = 37  # S3 appends 26 characters to a bucket_prefix (63 in all)
RDS_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"


def container_log_group_name(cluster_name: str) -> str:
    """The log group Fluent Bit sends every container's stdout and stderr to."""
    return f"/aws/eks/{cluster_name}/containers"


@dataclass(frozen=True)
class SinksArgs:
    """Inputs of the Sinks component."""

    settings: OperationsConfig  # the stack's operations keys
    name_prefix: str  # `<project>-<stack>`
    cluster_name: str
    account_id: str
    region: str
    partition: str
    force_destroy: bool  # delete the log buckets with their objects (dev stacks)
    key_deletion_days: int = 30


class Sinks(pulumi.ComponentResource):
    """The telemetry key, the log buckets, the container log group, the RDS monitoring role."""

    key_arn: pulumi.Output[str]
    log_key_arn: pulumi.Output[str] | None  # the key, when log groups are to be encrypted
    access_log_bucket: pulumi.Output[str]
    waf_log_bucket_arn: pulumi.Output[str]
    container_log_group: aws.cloudwatch.LogGroup
    monitoring_role_arn: pulumi.Output[str] | None  # None: enhanced monitoring is off

    def __init__(self, name: str, args: SinksArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Sinks", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings

        key = aws.kms.Key(
            f"{name}-key",
            description=f"Alert topic and log groups of {args.name_prefix}",
            enable_key_rotation=True,
            deletion_window_in_days=args.key_deletion_days,
            policy=json.dumps(key_policy(args.account_id, args.region, args.partition)),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{args.name_prefix}-telemetry",
            target_key_id=key.key_id,
            opts=child,
        )
        self.key_arn = key.arn
        self.log_key_arn = key.arn if s.log_kms_encryption else None

        access_logs = LogBucket(
            f"{name}-alb-access-logs",
            bucket_prefix=physical_name(args.name_prefix, "alb-logs", limit=BUCKET_PREFIX_LIMIT - 1)
            + "-",
            expiration_days=s.log_bucket_days,
            force_destroy=args.force_destroy,
            statements=[alb_log_statements(args.account_id, args.region, args.partition)],
            opts=child,
        )
        waf_logs = LogBucket(
            f"{name}-waf-logs",
            bucket_prefix=WAF_LOG_PREFIX
            + physical_name(args.name_prefix, limit=BUCKET_PREFIX_LIMIT - len(WAF_LOG_PREFIX) - 1)
            + "-",
            expiration_days=s.log_bucket_days,
            force_destroy=args.force_destroy,
            statements=[vended_log_statements(args.account_id, args.region, args.partition)],
            opts=child,
        )
        self.access_log_bucket = access_logs.name
        self.waf_log_bucket_arn = waf_logs.arn

        self.container_log_group = aws.cloudwatch.LogGroup(
            f"{name}-containers",
            name=container_log_group_name(args.cluster_name),
            retention_in_days=s.log_retention_days,
            kms_key_id=self.log_key_arn,
            opts=child,
        )

        self.monitoring_role_arn = None
        if s.db_monitoring_interval:
            self.monitoring_role_arn = self._monitoring_role(name, args, child)

        self.register_outputs(
            {
                "keyArn": self.key_arn,
                "accessLogBucket": self.access_log_bucket,
                "wafLogBucketArn": self.waf_log_bucket_arn,
                "containerLogGroup": self.container_log_group.name,
            }
        )

    @staticmethod
    def _monitoring_role(
        name: str, args: SinksArgs, opts: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        role = aws.iam.Role(
            f"{name}-rds-monitoring",
            description=f"RDS enhanced monitoring of {args.name_prefix}",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                        }
                    ],
                }
            ),
            opts=opts,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-rds-monitoring-policy",
            role=role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/{RDS_MONITORING_POLICY}",
            opts=opts,
        )
        # The instance may only use the role once it can write.
        return pulumi.Output.all(role.arn, attachment.id).apply(lambda v: v[0])


def key_policy(account_id: str, region: str, partition: str) -> dict:
    """The telemetry key's policy: the account administers it; CloudWatch Logs encrypts this
    account's log groups with it; CloudWatch alarms and Amazon Managed Service for Prometheus
    publish to the topic it encrypts."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                        )
                    }
                },
            },
            {
                "Sid": "AlarmsAndPrometheusPublishToTheEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "aps.amazonaws.com"]},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
            },
        ],
    }
