"""Every policy passes the program's real stacks and the hand-built reference records."""

from __future__ import annotations

import pytest
from agent_platform_policies import ALL_POLICIES

from tests.policy.policy_harness import program_graph, violations
from tests.policy.reference_records import good_graph

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b"
# The committed stacks (prod and staging with their placeholder certificate and API allow-list),
# prod with a real-looking certificate, and prod with a private-only Kubernetes API.
GRAPHS = {
    "dev": ("dev", None),
    "staging": ("staging", None),
    "prod": ("prod", None),
    "prod-https": ("prod", {"certificateArn": CERTIFICATE}),
    "prod-private-api": (
        "prod",
        {"clusterEndpointPublicAccess": False, "clusterPublicAccessCidrs": None},
    ),
}


@pytest.mark.parametrize("graph_id", GRAPHS)
@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_the_program_passes(policy, graph_id):
    stack, overrides = GRAPHS[graph_id]
    assert violations(policy, program_graph(stack, overrides)) == []


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_the_reference_records_pass(policy):
    assert violations(policy, good_graph()) == []


def test_the_program_registers_what_the_policies_inspect():
    # A policy with nothing to look at passes vacuously: the stacks must contain each kind.
    kinds = {r.type for r in program_graph("prod").resources}
    expected = {
        "aws:rds/instance:Instance",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/listener:Listener",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:ec2/flowLog:FlowLog",
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "pulumi:providers:aws",
        "eks:index:Cluster",
        "eks:index:ManagedNodeGroup",
        "aws:ecr/repository:Repository",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:policy/v1:PodDisruptionBudget",
    }
    assert expected - kinds == set()


def test_https_listener_exists_when_a_certificate_is_configured():
    listeners = [
        r
        for r in program_graph("prod", {"certificateArn": CERTIFICATE}).resources
        if r.type == "aws:lb/listener:Listener"
    ]
    assert sorted(r.raw_inputs["protocol"] for r in listeners) == ["HTTP", "HTTPS"]
