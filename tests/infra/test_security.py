"""Security defaults of the whole graph: providers, tags, ingress paths, secrets."""

from __future__ import annotations

import json

from infra.offline.mocking import Graph, RecordedResource, Recorder
from tests.infra.pulumi_harness import run_program

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"


def sg_id(graph: Graph, component: str) -> str:
    return graph.one(SG, name_contains=f"{component}-").id


def rules_into(graph: Graph, group_id: str) -> list[RecordedResource]:
    return [r for r in graph.of_type(INGRESS) if r.get("securityGroupId") == group_id]


def test_every_aws_resource_uses_the_one_explicit_provider(graph):
    (provider,) = graph.of_type("pulumi:providers:aws")
    reference = f"{provider.urn}::{provider.id}"
    aws_resources = [r for r in graph.resources if r.type.startswith("aws:")]
    assert aws_resources
    assert {r.provider for r in aws_resources} == {reference}


def test_the_provider_tags_everything_with_project_stack_environment_and_owner(graph):
    provider = graph.one("pulumi:providers:aws")
    tags = json.loads(provider.get("defaultTags"))["tags"]
    assert tags == {
        "project": "agent-platform",
        "stack": graph.stack,
        "environment": graph.stack,
        "managed-by": "pulumi",
    }
    assert provider.get("region") == "us-east-1"


def test_review_stacks_are_tagged_as_dev_environments():
    graph = run_program("pr-42")
    tags = json.loads(graph.one("pulumi:providers:aws").get("defaultTags"))["tags"]
    assert (tags["stack"], tags["environment"]) == ("pr-42", "dev")


def test_the_database_admits_5432_only_from_the_workload_group(graph):
    workload = graph.outputs["workloadSecurityGroupId"]
    (rule,) = rules_into(graph, sg_id(graph, "database"))
    assert rule.get("referencedSecurityGroupId") == workload
    assert (rule.get("ipProtocol"), rule.get("fromPort"), rule.get("toPort")) == ("tcp", 5432, 5432)


def test_the_cache_admits_6379_only_from_the_workload_group(graph):
    workload = graph.outputs["workloadSecurityGroupId"]
    (rule,) = rules_into(graph, sg_id(graph, "cache"))
    assert rule.get("referencedSecurityGroupId") == workload
    assert (rule.get("ipProtocol"), rule.get("fromPort"), rule.get("toPort")) == ("tcp", 6379, 6379)


def test_data_stores_are_never_opened_to_address_ranges(graph):
    for component in ("database", "cache"):
        for rule in rules_into(graph, sg_id(graph, component)):
            assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    for group in graph.of_type(SG):
        assert group.get("ingress", []) == [], "rules live in their own resources"


def test_the_alb_admits_only_http_from_the_configured_ranges_without_a_certificate(dev):
    rules = rules_into(dev, sg_id(dev, "ingress"))
    assert {(r.get("fromPort"), r.get("toPort"), r.get("cidrIpv4")) for r in rules} == {
        (80, 80, "0.0.0.0/0")
    }


def test_the_alb_admits_80_and_443_from_each_configured_range_with_a_certificate():
    cidrs = ["203.0.113.0/24", "198.51.100.0/24"]
    graph = run_program("prod", {"albIngressCidrs": cidrs, "certificateArn": CERT})
    rules = rules_into(graph, sg_id(graph, "ingress"))
    assert {(r.get("fromPort"), r.get("cidrIpv4")) for r in rules} == {
        (port, cidr) for port in (80, 443) for cidr in cidrs
    }


def test_the_workload_group_admits_only_the_alb_on_the_service_port_and_the_scraper(graph):
    alb, scraper = sg_id(graph, "ingress"), sg_id(graph, "monitoring-scraper")
    rules = rules_into(graph, graph.outputs["workloadSecurityGroupId"])
    assert {
        (
            r.get("referencedSecurityGroupId"),
            r.get("ipProtocol"),
            r.get("fromPort"),
            r.get("toPort"),
        )
        for r in rules
    } == {
        (alb, "tcp", 8000, 8000),
        (scraper, "tcp", 9090, 9090),  # the service's metrics port
        (scraper, "tcp", 8080, 8080),  # kube-state-metrics
    }


def test_no_other_ingress_exists(graph):
    owners = {
        sg_id(graph, "ingress"),
        sg_id(graph, "database"),
        sg_id(graph, "cache"),
        graph.outputs["workloadSecurityGroupId"],
        graph.outputs["nodeSecurityGroupId"],  # the Kubernetes API, from the scraper only
    }
    assert {r.get("securityGroupId") for r in graph.of_type(INGRESS)} == owners
    # ALB: HTTP, and HTTPS where there is a certificate (staging, prod); database; cache; targets;
    # the scraper: the metrics port, kube-state-metrics and the Kubernetes API.
    assert len(graph.of_type(INGRESS)) == (7 if graph.stack == "dev" else 8)
    (to_api,) = rules_into(graph, graph.outputs["nodeSecurityGroupId"])
    assert to_api.get("referencedSecurityGroupId") == sg_id(graph, "monitoring-scraper")
    assert (to_api.get("fromPort"), to_api.get("toPort")) == (443, 443)


def test_the_alb_egress_goes_only_to_the_workload_on_the_service_port(graph):
    workload, api = graph.outputs["workloadSecurityGroupId"], graph.outputs["nodeSecurityGroupId"]
    alb, scraper = sg_id(graph, "ingress"), sg_id(graph, "monitoring-scraper")
    assert {
        (r.get("securityGroupId"), r.get("referencedSecurityGroupId"), r.get("fromPort"),
         r.get("toPort"))
        for r in graph.of_type(EGRESS)
    } == {
        (alb, workload, 8000, 8000),
        (scraper, workload, 9090, 9090),
        (scraper, workload, 8080, 8080),
        (scraper, api, 443, 443),
    }  # fmt: skip
    for group in graph.of_type(SG):
        assert group.get("egress", []) == []


def test_the_redis_auth_token_is_secret_in_inputs_and_outputs(graph):
    group = graph.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.is_secret("authToken")
    assert len(group.get("authToken")) == 64
    assert "redisAuthToken" in graph.secret_outputs


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_secrets_never_appear_in_plain_inputs_or_outputs():
    graph = run_program("prod", secrets={"apiKeys": "k-0123456789abcdef", "modelApiKey": "sk-x9"})
    token = graph.one("aws:elasticache/replicationGroup:ReplicationGroup").get("authToken")
    known = {token, "k-0123456789abcdef", "sk-x9"}
    for resource in graph.resources:
        plain_inputs = {k: v for k, v in resource.raw_inputs.items() if not resource.is_secret(k)}
        leaked = [s for s in _strings(plain_inputs) if any(secret in s for secret in known)]
        assert leaked == [], f"{resource.type} {resource.name} carries a secret in plain text"
    for name, value in graph.outputs.items():
        if name not in graph.secret_outputs:
            assert not any(secret in s for s in _strings(value) for secret in known), name
    document = json.dumps(graph.to_document())
    assert not any(secret in document for secret in known)


def test_the_rds_master_password_never_passes_through_the_program(graph):
    instance = graph.one("aws:rds/instance:Instance")
    assert instance.get("manageMasterUserPassword") is True
    assert "password" not in instance.inputs


def test_every_invoke_goes_through_the_explicit_provider():
    recorder = Recorder()
    graph = run_program("dev", recorder=recorder)
    provider = graph.one("pulumi:providers:aws")
    tokens = {call.token for call in recorder.invokes}
    assert "aws:index/getAvailabilityZones:getAvailabilityZones" in tokens
    assert {call.provider for call in recorder.invokes} == {f"{provider.urn}::{provider.id}"}


def _node_groups(graph: Graph) -> list[str]:
    """The security groups the managed nodes (and so every pod on the VPC CNI) carry."""
    return graph.one("aws:ec2/launchTemplate:LaunchTemplate").get("vpcSecurityGroupIds")


def test_the_data_stores_and_the_alb_reach_pods_through_a_group_the_nodes_carry(graph):
    carried = _node_groups(graph)
    workload = graph.outputs["workloadSecurityGroupId"]
    assert workload in carried
    for component, port in (("database", 5432), ("cache", 6379)):
        (rule,) = rules_into(graph, sg_id(graph, component))
        assert rule.get("referencedSecurityGroupId") in carried, component
        assert rule.get("fromPort") == port
    (to_pods,) = [r for r in rules_into(graph, workload) if r.get("fromPort") == 8000]
    assert to_pods.get("referencedSecurityGroupId") == sg_id(graph, "ingress")
    assert to_pods.get("fromPort") == to_pods.get("toPort") == 8000


def test_nothing_admits_the_eks_cluster_group_beyond_what_eks_manages(graph):
    eks_group = graph.outputs["nodeSecurityGroupId"]
    assert eks_group in _node_groups(graph)
    references = {r.get("referencedSecurityGroupId", None) for r in graph.of_type(INGRESS)}
    # The narrower workload group is the nodes' identity towards the data stores.
    assert eks_group not in references
