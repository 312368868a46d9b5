"""Alarms, the alert topic and its key, the CloudWatch dashboard."""

from __future__ import annotations

import json

import pytest

from infra.offline.mocking import Graph, RecordedResource
from tests.infra.pulumi_harness import config_error, run_program

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
GIB = 2**30

DEV_ALARMS = {
    "alb-5xx", "target-5xx", "unhealthy-targets", "no-healthy-targets", "db-free-storage",
    "cache-001-memory",
}  # fmt: skip
PROD_ALARMS = {
    "alb-5xx", "target-5xx", "unhealthy-targets", "no-healthy-targets", "target-response-time",
    "db-cpu", "db-free-storage", "db-free-memory", "db-connections",
    *(f"cache-00{n}-{what}" for n in (1, 2)
      for what in ("cpu", "engine-cpu", "memory", "evictions", "replication-lag")),
    *(f"nat-{n}-port-allocation" for n in (1, 2, 3)),
}  # fmt: skip


def alarms(graph: Graph) -> dict[str, RecordedResource]:
    prefix = f"agent-platform-{graph.stack}-"
    return {a.get("name").removeprefix(prefix): a for a in graph.of_type(ALARM)}


def topic_policy(graph: Graph) -> list[dict]:
    return json.loads(graph.one("aws:sns/topicPolicy:TopicPolicy").get("policy"))["Statement"]


def test_dev_keeps_the_few_alarms_that_catch_a_broken_deployment(dev):
    assert set(alarms(dev)) == DEV_ALARMS


def test_prod_watches_the_alb_rds_every_cache_node_and_every_nat_gateway(prod):
    assert set(alarms(prod)) == PROD_ALARMS


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(graph):
    topic = graph.one(TOPIC).outputs["arn"]
    assert graph.outputs["alertTopicArn"] == topic
    for alarm in graph.of_type(ALARM):
        assert alarm.get("alarmActions") == [topic] and alarm.get("okActions") == [topic]


def test_the_5xx_alarms_are_ratios_of_requests_with_gaps_as_zero(prod):
    lb = prod.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    for what, metric in (("alb-5xx", "HTTPCode_ELB_5XX_Count"),
                         ("target-5xx", "HTTPCode_Target_5XX_Count")):  # fmt: skip
        alarm = alarms(prod)[what]
        queries = {q["id"]: q for q in alarm.get("metricQueries")}
        assert queries["errors"]["metric"]["metricName"] == metric
        assert queries["requests"]["metric"]["metricName"] == "RequestCount"
        for q in ("errors", "requests"):
            assert queries[q]["metric"]["dimensions"] == {"LoadBalancer": lb}
            assert queries[q]["metric"]["stat"] == "Sum"
        assert queries["ratio"]["expression"] == "100 * FILL(errors, 0) / FILL(requests, 1)"
        assert queries["ratio"]["returnData"] is True
        assert alarm.get("threshold") == 5
        assert alarm.get("comparisonOperator") == "GreaterThanThreshold"
        assert alarm.get("treatMissingData") == "notBreaching"


def test_target_health_alarms_watch_the_target_group(prod):
    tg = prod.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"]
    lb = prod.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    unhealthy, none = alarms(prod)["unhealthy-targets"], alarms(prod)["no-healthy-targets"]
    for alarm in (unhealthy, none):
        assert alarm.get("dimensions") == {"LoadBalancer": lb, "TargetGroup": tg}
    assert (unhealthy.get("metricName"), unhealthy.get("threshold")) == ("UnHealthyHostCount", 1)
    assert unhealthy.get("comparisonOperator") == "GreaterThanOrEqualToThreshold"
    assert (none.get("metricName"), none.get("comparisonOperator")) == (
        "HealthyHostCount",
        "LessThanThreshold",
    )
    assert none.get("treatMissingData") == "breaching"
    latency = alarms(prod)["target-response-time"]
    assert (latency.get("extendedStatistic"), latency.get("threshold")) == ("p95", 10.0)


def test_thresholds_come_from_the_config_and_zero_turns_an_alarm_off():
    graph = run_program(
        "prod",
        {"alarmDbFreeStorageGib": 7, "alarmCacheMemoryPercent": 65, "alarmDbCpuPercent": 0},
    )
    found = alarms(graph)
    storage = found["db-free-storage"]
    assert storage.get("threshold") == 7 * GIB
    assert storage.get("dimensions") == {"DBInstanceIdentifier": "agent-platform-prod"}
    assert storage.get("comparisonOperator") == "LessThanThreshold"
    assert {found[f"cache-00{n}-memory"].get("threshold") for n in (1, 2)} == {65}
    assert "db-cpu" not in found


def test_cache_alarms_name_each_member_cluster(prod):
    for n in (1, 2):
        memory = alarms(prod)[f"cache-00{n}-memory"]
        assert memory.get("namespace") == "AWS/ElastiCache"
        assert memory.get("metricName") == "DatabaseMemoryUsagePercentage"
        assert memory.get("dimensions") == {"CacheClusterId": f"agent-platform-prod-00{n}"}


def test_replication_lag_needs_a_replica():
    graph = run_program("prod", {"cacheNodes": 1})
    assert not any(name.endswith("replication-lag") for name in alarms(graph))


def test_nat_alarms_follow_the_gateways(prod):
    gateways = {n.id for n in prod.of_type("aws:ec2/natGateway:NatGateway")}
    watched = {
        a.get("dimensions")["NatGatewayId"]
        for name, a in alarms(prod).items()
        if name.startswith("nat-")
    }
    assert watched == gateways and len(gateways) == 3


def test_the_topic_is_encrypted_with_the_stacks_key_that_both_publishers_may_use(graph):
    key = graph.one("aws:kms/key:Key", "sinks-key")
    assert graph.one(TOPIC).get("kmsMasterKeyId") == key.outputs["arn"]
    assert graph.one(TOPIC).get("name") == f"agent-platform-{graph.stack}-alerts"
    assert key.get("enableKeyRotation") is True
    statements = {s["Sid"]: s for s in json.loads(key.get("policy"))["Statement"]}
    publishers = statements["AlarmsAndPrometheusPublishToTheEncryptedTopic"]
    assert publishers["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "aps.amazonaws.com"]}
    assert publishers["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]


def test_only_this_stacks_alarms_and_workspace_may_publish(graph):
    statements = {s["Sid"]: s for s in topic_policy(graph)}
    topic = graph.one(TOPIC).outputs["arn"]
    alarms_ = statements["CloudWatchAlarmsOfThisStack"]
    assert alarms_["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms_["Resource"] == topic and alarms_["Action"] == "sns:Publish"
    assert alarms_["Condition"] == {
        "ArnLike": {
            "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
            f"agent-platform-{graph.stack}-*"
        },
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    aps = statements["PrometheusAlertManagerOfThisWorkspace"]
    assert aps["Condition"]["ArnEquals"] == {
        "aws:SourceArn": graph.one("aws:amp/workspace:Workspace").outputs["arn"]
    }
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"
    assert set(statements) == {
        "CloudWatchAlarmsOfThisStack",
        "PrometheusAlertManagerOfThisWorkspace",
        "DenyInsecureTransport",
    }
    # Every alarm's name matches the publishing condition.
    for alarm in graph.of_type(ALARM):
        assert alarm.get("name").startswith(f"agent-platform-{graph.stack}-")


def test_alarm_emails_subscribe_to_the_topic():
    emails = ["oncall@example.com", "team+alerts@example.org"]
    graph = run_program("dev", {"alarmEmails": emails})
    subscriptions = graph.of_type(SUBSCRIPTION)
    assert sorted(s.get("endpoint") for s in subscriptions) == sorted(emails)
    assert {s.get("protocol") for s in subscriptions} == {"email"}
    assert {s.get("topic") for s in subscriptions} == {graph.one(TOPIC).outputs["arn"]}
    assert run_program("dev").of_type(SUBSCRIPTION) == []


@pytest.mark.parametrize("bad", ["oncall", "oncall@", "on call@example.com"])
def test_an_invalid_alarm_email_is_refused(bad):
    message = config_error("dev", {"alarmEmails": ["ok@example.com", bad]})
    assert message == (
        f"agent-platform:alarmEmails: {bad!r} is not valid; allowed: e-mail addresses"
    )


def test_the_dashboard_charts_the_stacks_own_resources(prod):
    dashboard = prod.one("aws:cloudwatch/dashboard:Dashboard")
    assert dashboard.get("dashboardName") == "agent-platform-prod"
    body = json.loads(dashboard.get("dashboardBody"))
    text = json.dumps(body)
    for expected in (
        prod.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"],
        prod.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"],
        "agent-platform-prod-001",
        "agent-platform-prod-002",
        "/aws/eks/agent-platform-prod/containers",
        *(n.id for n in prod.of_type("aws:ec2/natGateway:NatGateway")),
    ):
        assert expected in text, expected
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(
        a.outputs["arn"] for a in prod.of_type(ALARM)
    )
    positions = [(w["x"], w["y"]) for w in body["widgets"]]
    assert len(positions) == len(set(positions))
    assert all(w["x"] + w["width"] <= 24 for w in body["widgets"])
