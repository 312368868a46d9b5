"""S3 buckets that AWS services deliver logs into: the ALB's access logs and the WAF's logs.

Each bucket is private (public access blocked, ACLs disabled), encrypted with S3-managed keys
(SSE-S3: the only encryption ALB log delivery supports), reachable only over TLS, and empties
itself (a lifecycle rule expires objects); its policy lets exactly the delivering service write
under this account's `AWSLogs/<account>/` prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

# Regions whose ALBs deliver logs as an AWS account of Elastic Load Balancing (regions opened
# before August 2022); newer regions use the log delivery service principal. Source: "Enable
# access logs for your Application Load Balancer", Elastic Load Balancing user guide.
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ca-central-1": "985666609251",
    "eu-central-1": "054676820928", "eu-west-1": "156460612806", "eu-west-2": "652711504416",
    "eu-south-1": "635631232127", "eu-west-3": "009996457667", "eu-north-1": "897822967062",
    "ap-east-1": "754344448648", "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887", "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-south-1": "718504428378", "me-south-1": "076674570225", "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
}  # fmt: skip
ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
LOG_DELIVERY = "delivery.logs.amazonaws.com"  # WAF (and other vended logs) to S3
ALB_LOG_PREFIX = "alb"

Statements = Callable[[str], list[dict[str, Any]]]  # bucket ARN -> policy statements


def alb_log_statements(account_id: str, region: str, partition: str) -> Statements:
    """ELB log delivery may put objects under `alb/AWSLogs/<account>/`."""

    def statements(bucket_arn: str) -> list[dict[str, Any]]:
        resource = f"{bucket_arn}/{ALB_LOG_PREFIX}/AWSLogs/{account_id}/*"
        principals: list[dict[str, Any]] = [{"Service": ELB_LOG_DELIVERY}]
        if region in ELB_LOG_ACCOUNTS:
            principals.insert(0, {"AWS": f"arn:{partition}:iam::{ELB_LOG_ACCOUNTS[region]}:root"})
        return [
            {
                "Sid": f"ElbLogDelivery{i}",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "s3:PutObject",
                "Resource": resource,
            }
            for i, principal in enumerate(principals)
        ]

    return statements


def vended_log_statements(account_id: str, region: str, partition: str) -> Statements:
    """CloudWatch Logs' delivery service (WAF logs) may write this account's logs only."""
    source = {
        "StringEquals": {"aws:SourceAccount": account_id},
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account_id}:*"},
    }

    def statements(bucket_arn: str) -> list[dict[str, Any]]:
        return [
            {
                "Sid": "LogDeliveryWrite",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account_id}/*",
                "Condition": {
                    **source,
                    "StringEquals": {
                        **source["StringEquals"],
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    },
                },
            },
            {
                "Sid": "LogDeliveryAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": source,
            },
        ]

    return statements


def tls_only(bucket_arn: str) -> dict[str, Any]:
    """Refuse every request that does not come over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class LogBucket:
    """A private, SSE-S3 encrypted, self-expiring bucket a log service delivers into."""

    bucket: aws.s3.Bucket
    name: pulumi.Output[str]  # resolves once the policy is in place (delivery checks it)
    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        bucket_prefix: str,
        expiration_days: int,
        force_destroy: bool,
        statements: Sequence[Statements],
        opts: pulumi.ResourceOptions,
    ):
        bucket = aws.s3.Bucket(
            name, bucket_prefix=bucket_prefix, force_destroy=force_destroy, opts=opts
        )
        controls = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=opts,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=opts,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": expiration_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=opts,
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            *(s for make in statements for s in make(arn)),
                            tls_only(arn),
                        ],
                    }
                )
            ),
            # A public-access block on a bucket whose policy is being written races it.
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[block, controls])
            ),
        )
        self.bucket = bucket
        self.name = pulumi.Output.all(bucket.bucket, policy.id).apply(lambda v: v[0])
        self.arn = pulumi.Output.all(bucket.arn, policy.id).apply(lambda v: v[0])
