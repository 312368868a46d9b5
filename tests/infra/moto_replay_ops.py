"""The replay of the operations resources (Sinks, Monitoring) into moto: log buckets, the alert
topic, alarms and dashboard, the Prometheus workspace and rule namespaces, WAF logging; and
Karpenter's interruption queue with its policy and EventBridge rules.

A mixin of `tests.infra.moto_replay.Replay`; moto has no API for AMP's managed scraper or alert
manager definition (see NOT_REPLAYED there). Mock identifiers inside documents (bucket, topic,
key and web ACL ARNs) are swapped for moto's before they are sent.
"""

from __future__ import annotations

import json
from typing import Any

S3_BUCKET_LIMIT = 63
WAF_LOG_PREFIX = "aws-waf-logs-"

ORDER = [
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:amp/workspace:Workspace",
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace",
    "aws:sns/topic:Topic",
    "aws:sns/topicPolicy:TopicPolicy",
    "aws:sns/topicSubscription:TopicSubscription",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/dashboard:Dashboard",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
    "aws:sqs/queue:Queue",
    "aws:sqs/queuePolicy:QueuePolicy",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/eventTarget:EventTarget",
]


def _rule_broken(message: str) -> AssertionError:
    from tests.infra.moto_replay import ReplayRuleError  # the replay imports this module

    return ReplayRuleError(message)


def _pascal_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal_keys(v) for v in value]
    return value


class OpsReplay:
    """Handlers for the operations resources (S3, SNS, CloudWatch, AMP, WAF logging); the
    clients, `refs`, `ref` and `remember` are the Replay's."""

    refs: dict[str, str]
    s3: Any
    sns: Any
    cloudwatch: Any
    amp: Any
    wafv2: Any
    sqs: Any
    events: Any

    def swap(self, text: str) -> str:
        """`text` with every mock value the replay knows replaced by moto's."""
        for mock, real in sorted(self.refs.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(mock, real)
        return text

    # S3 ----------------------------------------------------------------------------------------
    def _s3_Bucket(self, r):
        name = r.outputs["bucket"]
        if len(name) > S3_BUCKET_LIMIT:
            raise _rule_broken(f"bucket name {name!r} is longer than {S3_BUCKET_LIMIT}")
        self.s3.create_bucket(Bucket=name)
        self.remember(r, name, arn=f"arn:aws:s3:::{name}", bucket=name)

    def _s3_BucketOwnershipControls(self, r):
        self.s3.put_bucket_ownership_controls(
            Bucket=self.ref(r.get("bucket")),
            OwnershipControls={"Rules": [{"ObjectOwnership": r.get("rule")["objectOwnership"]}]},
        )
        self.remember(r, r.get("bucket"))

    def _s3_BucketPublicAccessBlock(self, r):
        keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        self.s3.put_public_access_block(
            Bucket=self.ref(r.get("bucket")),
            PublicAccessBlockConfiguration={k[:1].upper() + k[1:]: r.get(k) for k in keys},
        )
        self.remember(r, r.get("bucket"))

    def _s3_BucketServerSideEncryptionConfiguration(self, r):
        (rule,) = r.get("rules")
        default = rule["applyServerSideEncryptionByDefault"]
        self.s3.put_bucket_encryption(
            Bucket=self.ref(r.get("bucket")),
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": default["sseAlgorithm"]
                        }
                    }
                ]
            },
        )
        self.remember(r, r.get("bucket"))

    def _s3_BucketLifecycleConfiguration(self, r):
        rules = []
        for rule in r.get("rules"):
            rules.append(
                {
                    "ID": rule["id"],
                    "Status": rule["status"],
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": rule["expiration"]["days"]},
                    "AbortIncompleteMultipartUpload": {
                        "DaysAfterInitiation": rule["abortIncompleteMultipartUpload"][
                            "daysAfterInitiation"
                        ]
                    },
                }
            )
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=self.ref(r.get("bucket")), LifecycleConfiguration={"Rules": rules}
        )
        self.remember(r, r.get("bucket"))

    def _s3_BucketPolicy(self, r):
        bucket = self.ref(r.get("bucket"))
        self.s3.put_bucket_policy(Bucket=bucket, Policy=self.swap(r.get("policy")))
        self.remember(r, bucket)

    # AMP ---------------------------------------------------------------------------------------
    def _amp_Workspace(self, r):
        workspace = self.amp.create_workspace(alias=r.get("alias"), tags=r.inputs.get("tags") or {})
        self.remember(r, workspace["workspaceId"], arn=workspace["arn"])

    def _amp_RuleGroupNamespace(self, r):
        self.amp.create_rule_groups_namespace(
            workspaceId=self.ref(r.get("workspaceId")),
            name=r.get("name"),
            data=r.get("data").encode(),
        )
        self.remember(r, r.get("name"))

    # SNS ---------------------------------------------------------------------------------------
    def _sns_Topic(self, r):
        attributes = {}
        if r.inputs.get("kmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = self.ref(r.get("kmsMasterKeyId"))
        arn = self.sns.create_topic(Name=r.get("name"), Attributes=attributes)["TopicArn"]
        self.remember(r, arn, arn=arn)

    def _sns_TopicPolicy(self, r):
        arn = self.ref(r.get("arn"))
        self.sns.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=self.swap(r.get("policy"))
        )
        self.remember(r, arn)

    def _sns_TopicSubscription(self, r):
        arn = self.sns.subscribe(
            TopicArn=self.ref(r.get("topic")),
            Protocol=r.get("protocol"),
            Endpoint=r.get("endpoint"),
        )["SubscriptionArn"]
        self.remember(r, arn)

    # CloudWatch --------------------------------------------------------------------------------
    def _cloudwatch_MetricAlarm(self, r):
        shape: dict[str, Any] = {
            "AlarmName": r.get("name"),
            "AlarmDescription": r.get("alarmDescription"),
            "ComparisonOperator": r.get("comparisonOperator"),
            "Threshold": float(r.get("threshold")),
            "EvaluationPeriods": int(r.get("evaluationPeriods")),
            "DatapointsToAlarm": int(r.get("datapointsToAlarm")),
            "TreatMissingData": r.get("treatMissingData"),
            "AlarmActions": [self.ref(a) for a in r.get("alarmActions")],
            "OKActions": [self.ref(a) for a in r.get("okActions")],
        }
        if r.inputs.get("metricQueries"):
            shape["Metrics"] = [self._query(q) for q in r.get("metricQueries")]
        else:
            shape.update(
                Namespace=r.get("namespace"),
                MetricName=r.get("metricName"),
                Period=int(r.get("period")),
                Dimensions=[{"Name": k, "Value": v} for k, v in r.get("dimensions").items()],
            )
            stat = r.inputs.get("statistic")
            shape.update(
                {"Statistic": stat} if stat else {"ExtendedStatistic": r.get("extendedStatistic")}
            )
        self.cloudwatch.put_metric_alarm(**shape)
        (alarm,) = self.cloudwatch.describe_alarms(AlarmNames=[r.get("name")])["MetricAlarms"]
        self.remember(r, alarm["AlarmName"], arn=alarm["AlarmArn"])

    @staticmethod
    def _query(query: dict[str, Any]) -> dict[str, Any]:
        if "expression" in query:
            return {
                "Id": query["id"],
                "Expression": query["expression"],
                "Label": query["label"],
                "ReturnData": query["returnData"],
            }
        metric = query["metric"]
        return {
            "Id": query["id"],
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": metric["namespace"],
                    "MetricName": metric["metricName"],
                    "Dimensions": [
                        {"Name": k, "Value": v} for k, v in metric["dimensions"].items()
                    ],
                },
                "Period": int(metric["period"]),
                "Stat": metric["stat"],
            },
        }

    def _cloudwatch_Dashboard(self, r):
        body = r.get("dashboardBody")
        json.loads(body)
        self.cloudwatch.put_dashboard(DashboardName=r.get("dashboardName"), DashboardBody=body)
        self.remember(r, r.get("dashboardName"))

    # WAF logging -------------------------------------------------------------------------------
    def _wafv2_WebAclLoggingConfiguration(self, r):
        destinations = [self.ref(d) for d in r.get("logDestinationConfigs")]
        for arn in destinations:
            if not arn.rsplit(":", 1)[-1].split("/")[-1].startswith(WAF_LOG_PREFIX):
                raise _rule_broken(f"a WAF log destination must be named {WAF_LOG_PREFIX}*")
        self.wafv2.put_logging_configuration(
            LoggingConfiguration={
                "ResourceArn": self.ref(r.get("resourceArn")),
                "LogDestinationConfigs": destinations,
                "RedactedFields": _pascal_keys(r.get("redactedFields")),
            }
        )
        self.remember(r, self.ref(r.get("resourceArn")))

    # SQS and EventBridge (Karpenter's interruption queue) --------------------------------------
    def _sqs_Queue(self, r):
        attributes = {
            "MessageRetentionPeriod": str(r.get("messageRetentionSeconds")),
            "SqsManagedSseEnabled": "true" if r.get("sqsManagedSseEnabled") else "false",
        }
        url = self.sqs.create_queue(QueueName=r.get("name"), Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.remember(r, url, arn=arn, url=url)

    def _sqs_QueuePolicy(self, r):
        url = self.ref(r.get("queueUrl"))
        self.sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": self.swap(r.get("policy"))}
        )
        self.remember(r, url)

    def _cloudwatch_EventRule(self, r):
        name = f"{r.name}-1a2b3c4"  # Pulumi's auto-name
        json.loads(r.get("eventPattern"))  # EventBridge refuses a pattern that is not JSON
        arn = self.events.put_rule(Name=name, EventPattern=r.get("eventPattern"))["RuleArn"]
        self.remember(r, arn, arn=arn, name=name)

    def _cloudwatch_EventTarget(self, r):
        rule = self.ref(r.get("rule"))
        target = {"Id": r.get("targetId"), "Arn": self.ref(r.get("arn"))}
        failed = self.events.put_targets(Rule=rule, Targets=[target])["FailedEntryCount"]
        if failed:
            raise _rule_broken(f"EventBridge refused target {target} of {rule}")
        self.remember(r, f"{rule}/{target['Id']}")
