"""The stack's alert topic: one SNS topic every alarm and Prometheus alert goes to.

Encrypted with the stack's telemetry key (whose policy lets both publishers use it). The topic
policy lets CloudWatch publish for this account's alarms of this stack and the Prometheus
service for this stack's workspace only (confused-deputy conditions), and refuses publishing
without TLS. Subscribers: the `alarmEmails` addresses (each confirms by e-mail); add others
(chat, paging) to the topic by hand or in a program of their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws


def topic_policy(
    topic_arn: str, workspace_arn: str, prefix: str, account_id: str, region: str, partition: str
) -> dict[str, Any]:
    """Who may publish to the alert topic."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudWatchAlarmsOfThisStack",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:"
                        f"alarm:{prefix}-*"
                    },
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            {
                "Sid": "PrometheusAlertManagerOfThisWorkspace",
                "Effect": "Allow",
                "Principal": {"Service": "aps.amazonaws.com"},
                "Action": ["sns:Publish", "sns:GetTopicAttributes"],
                "Resource": topic_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": workspace_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def alert_topic(
    name: str,
    *,
    prefix: str,
    key_arn: pulumi.Input[str],
    workspace_arn: pulumi.Input[str],
    emails: Sequence[str],
    account_id: str,
    region: str,
    partition: str,
    opts: pulumi.ResourceOptions,
) -> aws.sns.Topic:
    """The topic, its policy and one e-mail subscription per address."""
    topic = aws.sns.Topic(name, name=f"{prefix}-alerts", kms_master_key_id=key_arn, opts=opts)
    aws.sns.TopicPolicy(
        f"{name}-policy",
        arn=topic.arn,
        policy=pulumi.Output.all(topic.arn, workspace_arn).apply(
            lambda v: json.dumps(topic_policy(v[0], v[1], prefix, account_id, region, partition))
        ),
        opts=opts,
    )
    for email in emails:
        # Named by the address's digest: adding or removing one leaves the others alone.
        digest = hashlib.sha256(email.lower().encode()).hexdigest()[:8]
        aws.sns.TopicSubscription(
            f"{name}-email-{digest}", topic=topic.arn, protocol="email", endpoint=email, opts=opts
        )
    return topic
