"""KEDA: the pinned release and its identity, the ScaledObjects that adopt the HPAs, their
triggers (values written out: the numbers the scaling relies on) and how they authenticate."""

from __future__ import annotations

import json

import pytest

from infra.components.workload import sizing
from infra.offline.crds import CRD_ROOT
from infra.offline.mocking import Graph, RecordedResource
from infra.offline.records import is_secret
from tests.infra.pulumi_harness import graph_of, run_program

CUSTOM = "kubernetes:keda.sh/v1alpha1:{}"
HIGH, NORMAL = "agent:tasks:high", "agent:tasks:normal"


def scaled_object(graph: Graph, name: str) -> RecordedResource:
    return graph.one(CUSTOM.format("ScaledObject"), f"autoscaling-{name}")


def triggers(obj: RecordedResource) -> dict[str, dict]:
    return {t.get("name", t["type"]): t for t in obj.inputs["spec"]["triggers"]}


def test_keda_is_the_pinned_chart_whose_crds_are_vendored(graph):
    release = graph.one("kubernetes:helm.sh/v3:Release", "keda")
    assert (release.get("chart"), release.get("version")) == ("keda", "2.20.2")
    assert release.get("repositoryOpts") == {"repo": "https://kedacore.github.io/charts"}
    assert (release.get("namespace"), release.get("createNamespace")) == ("keda", True)
    assert (CRD_ROOT / "keda-2.20.2" / "crd-scaledobjects.yaml").is_file()
    values = release.inputs["values"]
    assert values["crds"] == {"install": True}
    irsa = values["podIdentity"]["aws"]["irsa"]
    role = graph.one("aws:iam/role:Role", "keda-operator-irsa")
    assert irsa == {"enabled": True, "roleArn": role.outputs["arn"], "stsRegionalEndpoints": "true"}
    assert "nodeSelector" not in values and "tolerations" not in values  # system nodes


def test_the_operator_role_trusts_keda_operator_and_queries_only_the_workspace(prod):
    trust = json.loads(prod.one("aws:iam/role:Role", "keda-operator-irsa").get("assumeRolePolicy"))
    (statement,) = trust["Statement"]
    assert list(statement["Condition"]["StringEquals"].values()) == [
        "system:serviceaccount:keda:keda-operator",
        "sts.amazonaws.com",
    ]
    policy = json.loads(
        prod.one("aws:iam/rolePolicy:RolePolicy", "keda-operator-query").get("policy")
    )
    assert policy["Statement"] == [
        {
            "Sid": "QueryTheStacksWorkspace",
            "Effect": "Allow",
            "Action": [
                "aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata",
            ],
            "Resource": prod.outputs["prometheusWorkspaceArn"],
        }
    ]  # fmt: skip


def test_the_worker_scales_on_lag_plus_pending_of_both_streams(prod):
    obj = scaled_object(prod, "worker")
    spec = obj.inputs["spec"]
    assert obj.inputs["metadata"]["annotations"] == {
        "scaledobject.keda.sh/transfer-hpa-ownership": "true"
    }
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "agent-worker"}  # fmt: skip
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 10)
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "agent-worker"
    assert spec["advanced"]["scalingModifiers"] == {
        "formula": "high_lag + high_pending + normal_lag + normal_pending",
        "target": "8",
        "metricType": "AverageValue",
    }
    found = triggers(obj)
    redis = {"type": "redis-streams", "authenticationRef": {"name": "redis"}}
    group = "agent-workers"
    assert found["high_lag"] == {**redis, "name": "high_lag", "metadata": {
        "stream": HIGH, "consumerGroup": group, "lagCount": "8"}}  # fmt: skip
    assert found["high_pending"] == {**redis, "name": "high_pending", "metadata": {
        "stream": HIGH, "consumerGroup": group, "pendingEntriesCount": "8"}}  # fmt: skip
    assert found["normal_lag"]["metadata"] == {
        "stream": NORMAL, "consumerGroup": group, "lagCount": "8"}  # fmt: skip
    assert found["normal_pending"]["metadata"] == {
        "stream": NORMAL, "consumerGroup": group, "pendingEntriesCount": "8"}  # fmt: skip
    assert found["cpu"] == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    assert found["memory"]["metadata"] == {"value": "80"}
    assert all("enableTLS" not in t["metadata"] for t in found.values())  # TLS: the auth's


def test_the_worker_target_and_its_env_follow_worker_concurrency():
    graph = run_program("dev", {"workerConcurrency": 4})
    spec = scaled_object(graph, "worker").inputs["spec"]
    assert spec["advanced"]["scalingModifiers"]["target"] == "4"
    assert triggers(scaled_object(graph, "worker"))["high_lag"]["metadata"]["lagCount"] == "4"
    assert spec["minReplicaCount"] == 1  # dev: workerMinReplicas 1, never 0
    config = graph.one("kubernetes:core/v1:ConfigMap", "workload-config").inputs["data"]
    assert config["WORKER_CONCURRENCY"] == "4"


def test_the_api_adds_chats_in_flight_per_pod_from_amp(prod):
    obj = scaled_object(prod, "api")
    spec = obj.inputs["spec"]
    assert obj.inputs["metadata"]["annotations"] == {
        "scaledobject.keda.sh/transfer-hpa-ownership": "true"
    }
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "agent-api"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 20)
    assert "scalingModifiers" not in spec["advanced"]
    workspace = prod.outputs["prometheusWorkspaceArn"].rsplit("/", 1)[1]
    chats = triggers(obj)["chats_in_flight"]
    assert chats == {
        "type": "prometheus",
        "name": "chats_in_flight",
        "metricType": "AverageValue",
        "authenticationRef": {"name": "aws"},
        "metadata": {
            "serverAddress": f"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/{workspace}",
            "awsRegion": "us-east-1",
            "query": 'sum(agent_chats_in_flight{namespace="agent",component="api"})',
            "threshold": "60",  # 60% of MAX_CONCURRENT_SESSIONS 100
        },
    }
    assert [t["type"] for t in spec["triggers"]] == ["cpu", "memory", "prometheus"]


def test_the_chats_target_is_sixty_percent_of_what_a_pod_holds():
    assert sizing.chats_in_flight_target(100) == 60
    assert sizing.chats_in_flight_target(1000) == 120  # MODEL_MAX_CONNECTIONS 200 binds
    assert sizing.chats_in_flight_target(1) == 1
    graph = run_program("dev", {"maxConcurrentSessions": 150})
    assert triggers(scaled_object(graph, "api"))["chats_in_flight"]["metadata"]["threshold"] == "90"


def test_the_scale_behaviour_is_the_hpas(graph):
    for name in ("api", "worker"):
        hpa = graph.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", f"workload-{name}-hpa")
        config = scaled_object(graph, name).inputs["spec"]["advanced"]
        assert config["horizontalPodAutoscalerConfig"]["behavior"] == hpa.inputs["spec"]["behavior"]
        assert config["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]["policies"] == [
            {"type": "Percent", "value": 100, "periodSeconds": 60},
            {"type": "Pods", "value": 4, "periodSeconds": 60},
        ]


def test_redis_reaches_keda_through_a_triggerauthentication_with_tls(prod):
    auth = prod.one(CUSTOM.format("TriggerAuthentication"), "autoscaling-redis-auth")
    assert auth.inputs["metadata"]["name"] == "redis"
    assert auth.inputs["spec"] == {
        "secretTargetRef": [
            {"parameter": "address", "name": "keda-redis", "key": "address"},
            {"parameter": "password", "name": "keda-redis", "key": "password"},
            {"parameter": "tls", "name": "keda-redis", "key": "tls"},
        ]
    }
    secret = prod.one("kubernetes:core/v1:Secret", "autoscaling-redis-secret")
    assert secret.inputs["metadata"]["name"] == "keda-redis"
    assert is_secret(secret.raw_inputs["stringData"])
    data = secret.inputs["stringData"]
    assert data == {
        "address": f"{prod.outputs['redisPrimaryEndpoint']}:6379",
        "password": prod.outputs["redisAuthToken"],
        "tls": "enable",
    }
    aws = prod.one(CUSTOM.format("TriggerAuthentication"), "autoscaling-aws-auth")
    assert aws.inputs["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "keda"}}


@pytest.mark.parametrize("name", ["api", "worker"])
def test_keda_adopts_the_hpa_pulumi_keeps_for_one_release(prod, name):
    hpa = prod.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", f"workload-{name}-hpa")
    assert hpa.inputs["metadata"]["name"] == f"agent-{name}"
    assert hpa.retain_on_delete is True  # removing it later leaves KEDA's HPA in place
    assert set(hpa.ignore_changes) == {"metadata", "spec"}  # Pulumi never rewrites it
    obj = scaled_object(prod, name)
    release = prod.one("kubernetes:helm.sh/v3:Release", "keda")
    assert prod.depends_on(obj, hpa) and prod.depends_on(obj, release)
    assert graph_of("prod").one(CUSTOM.format("ScaledObject"), f"autoscaling-{name}") is not None
