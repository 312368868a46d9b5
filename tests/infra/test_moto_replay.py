"""The rendered network, security groups, RDS, ElastiCache, ALB and WAF, replayed into moto."""

from __future__ import annotations

import dataclasses
import json
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from infra.offline.mocking import Graph
from tests.infra.moto_replay import Replay, ReplayRuleError
from tests.infra.pulumi_harness import graph_of, run_program

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint():
    # The node role attaches AWS managed policies: moto (in this process) knows them only
    # when asked to.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def replay(moto_endpoint) -> Replay:
    reset = f"{moto_endpoint}/moto-api/reset"  # our loopback server, plain http
    urllib.request.urlopen(urllib.request.Request(reset, method="POST"), timeout=10).close()  # noqa: S310
    return Replay(moto_endpoint, REGION)


def with_inputs(graph: Graph, name: str, **changes) -> Graph:
    """The graph with one resource's inputs changed (a deliberately broken plan)."""
    resources = tuple(
        dataclasses.replace(r, raw_inputs={**r.raw_inputs, **changes}) if r.name == name else r
        for r in graph.resources
    )
    return dataclasses.replace(graph, resources=resources)


def certificate(endpoint: str) -> str:
    """A certificate moto's ACM knows (AWS checks the listener's certificate exists)."""
    acm = boto3.client(
        "acm", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    return acm.request_certificate(DomainName="agent.example.com")["CertificateArn"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_aws_accepts_every_cidr_az_identifier_and_reference(replay, moto_endpoint, stack):
    graph = graph_of(stack)
    if stack == "prod":  # its stack file's certificate is a placeholder (next test)
        graph = run_program("prod", {"certificateArn": certificate(moto_endpoint)})
    replay.run(graph)
    expected = Replay.replayed(graph)
    assert sorted(replay.created) == sorted((r.type, r.name) for r in expected)
    assert {r.type for r in graph.resources if r.type.startswith("aws:")} - {
        r.type for r in expected
    } == {
        "aws:eks/addon:Addon",
        "aws:amp/scraper:Scraper",
        "aws:amp/alertManagerDefinition:AlertManagerDefinition",
        "aws:elasticache/parameterGroup:ParameterGroup",
        "aws:eks/accessEntry:AccessEntry",
    }

    vpc_id = replay.ref(graph.outputs["vpcId"])
    subnets = replay.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    assert len(subnets["Subnets"]) == 9
    assert len({s["AvailabilityZone"] for s in subnets["Subnets"]}) == 3
    nats = replay.ec2.describe_nat_gateways()["NatGateways"]
    assert len(nats) == (1 if stack == "dev" else 3)

    (db,) = replay.rds.describe_db_instances()["DBInstances"]
    assert db["DBInstanceIdentifier"] == f"agent-platform-{stack}"
    assert db["StorageEncrypted"] is True and db["PubliclyAccessible"] is False
    assert db["MultiAZ"] is (stack == "prod")
    assert db["MasterUserSecret"]["SecretArn"]

    (group,) = replay.elasticache.describe_replication_groups()["ReplicationGroups"]
    assert group["AtRestEncryptionEnabled"] and group["TransitEncryptionEnabled"]
    assert group["AuthTokenEnabled"] is True

    (alb,) = replay.elbv2.describe_load_balancers()["LoadBalancers"]
    assert alb["Scheme"] == "internet-facing"
    assert len(alb["AvailabilityZones"]) == 3
    acl = replay.wafv2.get_web_acl_for_resource(ResourceArn=alb["LoadBalancerArn"])
    assert {rule["Name"] for rule in acl["WebACL"]["Rules"]} >= {"rate-limit-per-ip"}


def test_the_stack_files_placeholder_certificate_must_be_replaced_before_pulumi_up(replay):
    with pytest.raises(ClientError, match="CertificateNotFound"):
        replay.run(graph_of("prod"))


def test_aws_accepts_the_https_listener_with_a_real_certificate(replay, moto_endpoint):
    replay.run(run_program("prod", {"certificateArn": certificate(moto_endpoint)}))
    listeners = replay.elbv2.describe_listeners(
        LoadBalancerArn=replay.elbv2.describe_load_balancers()["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
    )["Listeners"]
    assert {(x["Port"], x["Protocol"]) for x in listeners} == {(80, "HTTP"), (443, "HTTPS")}


def test_a_subnet_moved_outside_the_vpc_is_rejected(replay):
    broken = with_inputs(graph_of("dev"), "network-private-b", cidrBlock="10.1.32.0/19")
    with pytest.raises(ClientError, match=r"InvalidSubnet\.Range"):
        replay.run(broken)


def test_overlapping_subnets_are_rejected(replay):
    broken = with_inputs(graph_of("dev"), "network-public-b", cidrBlock="10.0.0.0/22")
    with pytest.raises(ClientError, match=r"InvalidSubnet\.Conflict"):
        replay.run(broken)


def test_an_alb_in_one_az_is_rejected(replay):
    graph = graph_of("dev")
    one_subnet = graph.outputs["publicSubnetIds"][:1]
    with pytest.raises(ReplayRuleError, match="an ALB needs subnets in 2\\+ AZs"):
        replay.run(with_inputs(graph, "ingress-alb", subnets=one_subnet))


def test_a_db_subnet_group_in_one_az_is_rejected(replay):
    graph = graph_of("dev")
    one_subnet = graph.outputs["databaseSubnetIds"][:1]
    with pytest.raises(ReplayRuleError, match="DB subnet group needs subnets in 2\\+ AZs"):
        replay.run(with_inputs(graph, "database-subnets", subnetIds=one_subnet))


def test_aws_accepts_the_interruption_queue_its_policy_and_every_rule(replay):
    graph = graph_of("dev")
    replay.run(graph)
    url = replay.ref(graph.one("aws:sqs/queue:Queue").outputs["url"])
    attributes = replay.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["MessageRetentionPeriod"], attributes["SqsManagedSseEnabled"]) == (
        "300", "true")  # fmt: skip
    allow, _deny = json.loads(attributes["Policy"])["Statement"]
    assert allow["Resource"] == attributes["QueueArn"]
    rules = [r["Name"] for r in replay.events.list_rules()["Rules"] if "karpenter" in r["Name"]]
    assert len(rules) == 5
    for rule in rules:
        (target,) = replay.events.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == attributes["QueueArn"]
