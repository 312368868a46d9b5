"""ElastiCache: encrypted at rest and in transit, secret AUTH token, failover in prod."""

from __future__ import annotations

import pytest

from infra.config import KEYS_BY_NAME
from tests.infra.pulumi_harness import STACKS, graph_of, run_program

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def test_the_cache_is_encrypted_at_rest_and_requires_tls(graph):
    group = graph.one(GROUP)
    assert group.get("atRestEncryptionEnabled") is True
    assert group.get("transitEncryptionEnabled") is True
    assert group.get("transitEncryptionMode") == "required"
    assert (group.get("engine"), group.get("engineVersion")) == ("redis", "7.1")
    assert group.get("nodeType") == "cache.t3.micro"


def test_the_auth_token_comes_from_pulumi_random_and_stays_secret(graph):
    group = graph.one(GROUP)
    password = graph.one("random:index/randomPassword:RandomPassword", "cache-")
    assert group.is_secret("authToken")
    assert group.get("authToken") == password.outputs["result"]
    assert password.get("special") is False and password.get("length") == 64
    assert graph.outputs["redisAuthToken"] == group.get("authToken")
    assert "redisAuthToken" in graph.secret_outputs


def test_the_cache_lives_in_the_isolated_subnets(graph):
    subnet_group = graph.one("aws:elasticache/subnetGroup:SubnetGroup")
    assert subnet_group.get("subnetIds") == graph.outputs["databaseSubnetIds"]
    assert graph.one(GROUP).get("subnetGroupName") == subnet_group.outputs["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_failover_and_snapshots_follow_the_environment(stack):
    group = graph_of(stack).one(GROUP)
    nodes = KEYS_BY_NAME["cacheNodes"].default(stack)
    assert group.get("numCacheClusters") == nodes
    assert group.get("automaticFailoverEnabled") is (nodes >= 2)
    assert group.get("multiAzEnabled") is (nodes >= 2)
    assert group.get("snapshotRetentionLimit") == KEYS_BY_NAME[
        "cacheSnapshotRetentionDays"
    ].default(stack)


def test_prod_fails_over_across_azs_and_keeps_snapshots(prod):
    group = prod.one(GROUP)
    assert group.get("numCacheClusters") >= 2
    assert group.get("automaticFailoverEnabled") is True
    assert group.get("multiAzEnabled") is True
    assert group.get("snapshotRetentionLimit") == 7


def test_dev_runs_one_node_without_failover(dev):
    group = dev.one(GROUP)
    assert group.get("numCacheClusters") == 1
    assert group.get("automaticFailoverEnabled") is False


def test_valkey_is_a_drop_in_engine():
    group = run_program("dev", {"cacheEngine": "valkey"}).one(GROUP)
    assert (group.get("engine"), group.get("engineVersion")) == ("valkey", "8.0")
    assert group.get("transitEncryptionEnabled") is True


@pytest.mark.parametrize(("engine", "family"), [("redis", "redis7"), ("valkey", "valkey8")])
def test_the_cache_evicts_only_keys_with_a_ttl_never_the_task_streams(engine, family):
    graph = run_program("prod", {"cacheEngine": engine})
    params = graph.one("aws:elasticache/parameterGroup:ParameterGroup")
    # volatile-lru: cold cached replies go first; the streams (no TTL) never; a lost lock is
    # fenced by the service (tests/faults/test_session_locks.py).
    assert params.get("parameters") == [{"name": "maxmemory-policy", "value": "volatile-lru"}]
    assert params.get("family") == family
    assert graph.one(GROUP).get("parameterGroupName") == params.outputs["name"]
