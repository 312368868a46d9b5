"""Logs: ALB access logs and WAF logs in S3, container logs in CloudWatch, RDS enhanced
monitoring, the key of the stack's log groups."""

from __future__ import annotations

import json

import pytest

from infra.offline.mocking import Graph, RecordedResource
from tests.infra.pulumi_harness import graph_of, run_program

BUCKET = "aws:s3/bucket:Bucket"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"


def bucket_part(graph: Graph, token: str, bucket: str) -> RecordedResource:
    return graph.one(f"aws:s3/{token}", f"sinks-{bucket}-")


def policy(graph: Graph, bucket: str) -> dict[str, dict]:
    document = json.loads(bucket_part(graph, "bucketPolicy:BucketPolicy", bucket).get("policy"))
    return {s["Sid"]: s for s in document["Statement"]}


@pytest.mark.parametrize("bucket", ["alb-access-logs", "waf-logs"])
def test_log_buckets_are_private_sse_s3_tls_only_and_expire(graph, bucket):
    b = graph.one(BUCKET, f"sinks-{bucket}")
    assert (
        bucket_part(graph, "bucketPublicAccessBlock:BucketPublicAccessBlock", bucket).get("bucket")
        == b.id
    )
    block = bucket_part(graph, "bucketPublicAccessBlock:BucketPublicAccessBlock", bucket).inputs
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block[k] is True for k in flags)
    ownership = bucket_part(graph, "bucketOwnershipControls:BucketOwnershipControls", bucket)
    assert ownership.get("rule") == {"objectOwnership": "BucketOwnerEnforced"}
    encryption = bucket_part(
        graph, "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )  # fmt: skip
    assert encryption.get("rules") == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]
    (rule,) = bucket_part(
        graph, "bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    ).get("rules")
    days = {"dev": 7, "staging": 30, "prod": 90}[graph.stack]
    assert rule["status"] == "Enabled" and rule["expiration"] == {"days": days}
    tls = policy(graph, bucket)["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


@pytest.mark.parametrize(
    ("stack", "destroyed"), [("dev", True), ("staging", False), ("prod", False)]
)
def test_only_dev_log_buckets_are_deleted_with_their_logs(stack, destroyed):
    for b in graph_of(stack).of_type(BUCKET):
        assert b.get("forceDestroy") is destroyed, b.name


def test_the_alb_writes_access_logs_where_elb_log_delivery_may_put_them(graph):
    alb = graph.one("aws:lb/loadBalancer:LoadBalancer")
    bucket = graph.one(BUCKET, "sinks-alb-access-logs").outputs["bucket"]
    assert alb.get("accessLogs") == {"bucket": bucket, "prefix": "alb", "enabled": True}
    assert graph.outputs["accessLogBucket"] == bucket
    statements = policy(graph, "alb-access-logs")
    resource = f"arn:aws:s3:::{bucket}/alb/AWSLogs/123456789012/*"
    # us-east-1 delivers as ELB's account there; newer regions as the log delivery service.
    assert statements["ElbLogDelivery0"]["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
    assert statements["ElbLogDelivery1"]["Principal"] == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com"
    }
    for sid in ("ElbLogDelivery0", "ElbLogDelivery1"):
        assert statements[sid]["Action"] == "s3:PutObject"
        assert statements[sid]["Resource"] == resource


def test_the_waf_logs_every_request_without_the_authorization_header(graph):
    logging = graph.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging.get("resourceArn") == graph.one("aws:wafv2/webAcl:WebAcl").outputs["arn"]
    bucket = graph.one(BUCKET, "sinks-waf-logs")
    assert logging.get("logDestinationConfigs") == [bucket.outputs["arn"]]
    assert bucket.outputs["bucket"].startswith(f"aws-waf-logs-agent-platform-{graph.stack}-")
    assert logging.get("redactedFields") == [{"singleHeader": {"name": "authorization"}}]
    assert "loggingFilter" not in logging.inputs  # nothing dropped
    write = policy(graph, "waf-logs")["LogDeliveryWrite"]
    assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert write["Condition"]["StringEquals"] == {
        "aws:SourceAccount": "123456789012",
        "s3:x-amz-acl": "bucket-owner-full-control",
    }


def test_container_logs_go_to_a_group_created_first_with_the_stacks_retention(graph):
    group = graph.one(LOG_GROUP, "sinks-containers")
    assert group.get("name") == f"/aws/eks/agent-platform-{graph.stack}/containers"
    assert group.get("retentionInDays") == {"dev": 14, "staging": 30, "prod": 90}[graph.stack]
    assert graph.outputs["containerLogGroup"] == group.get("name")
    (release,) = [r for r in graph.of_type(RELEASE) if r.get("chart") == "aws-for-fluent-bit"]
    assert (release.get("version"), release.get("namespace")) == ("0.2.0", "kube-system")
    assert release.get("repositoryOpts") == {"repo": "https://aws.github.io/eks-charts"}
    values = release.get("values")
    out = values["cloudWatchLogs"]
    assert out["logGroupName"] == group.get("name")
    assert out["autoCreateGroup"] is False and out["region"] == "us-east-1"
    assert not any(values[o]["enabled"] for o in ("firehose", "kinesis", "elasticsearch"))
    role = graph.one(ROLE, "monitoring-fluent-bit-irsa")
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    (sub,) = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert sub == "system:serviceaccount:kube-system:aws-for-fluent-bit"


def test_fluent_bit_may_only_write_streams_of_its_group(graph):
    arn = graph.one(LOG_GROUP, "sinks-containers").outputs["arn"]
    document = json.loads(graph.one("aws:iam/rolePolicy:RolePolicy", "fluent-bit").get("policy"))
    (statement,) = document["Statement"]
    assert statement["Action"] == [
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
    assert statement["Resource"] == [arn, f"{arn}:*"]


@pytest.mark.parametrize(
    ("stack", "encrypted"), [("dev", False), ("staging", True), ("prod", True)]
)
def test_the_stacks_log_groups_are_encrypted_with_its_key_outside_dev(stack, encrypted):
    graph = graph_of(stack)
    key = graph.one("aws:kms/key:Key", "sinks-key").outputs["arn"]
    for group in graph.of_type(LOG_GROUP):
        assert group.get("kmsKeyId", None) == (key if encrypted else None), group.name
    # containers, control plane, RDS postgresql and upgrade; flow logs outside dev
    assert len(graph.of_type(LOG_GROUP)) == (4 if stack == "dev" else 5)


def test_cloudwatch_logs_may_use_the_key_for_this_accounts_log_groups_only(prod):
    key = prod.one("aws:kms/key:Key", "sinks-key")
    statements = {s["Sid"]: s for s in json.loads(key.get("policy"))["Statement"]}
    logs = statements["CloudWatchLogsEncryptsThisAccountsLogGroups"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"
        }
    }


def test_rds_enhanced_monitoring_uses_its_own_role(graph):
    instance = graph.one("aws:rds/instance:Instance")
    role = graph.one(ROLE, "sinks-rds-monitoring")
    assert instance.get("monitoringInterval") == {"dev": 60, "staging": 60, "prod": 15}[graph.stack]
    assert instance.get("monitoringRoleArn") == role.outputs["arn"]
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    attachment = graph.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "rds-monitoring")
    assert attachment.get("policyArn") == (
        "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    )
    # Its data goes to the account-wide RDSOSMetrics group, which no stack owns.
    assert not [g for g in graph.of_type(LOG_GROUP) if g.get("name", "") == "RDSOSMetrics"]


def test_enhanced_monitoring_off_needs_no_role():
    graph = run_program("dev", {"dbMonitoringInterval": 0})
    assert graph.one("aws:rds/instance:Instance").get("monitoringInterval") == 0
    assert "monitoringRoleArn" not in graph.one("aws:rds/instance:Instance").inputs
    assert [r for r in graph.of_type(ROLE) if "rds-monitoring" in r.name] == []
