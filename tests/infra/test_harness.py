"""The mocks harness itself: what the next components (EKS, workload) will rely on."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s
import pytest

from infra.offline.mocking import UnmockedInvokeError
from infra.offline.render import write
from tests.infra.pulumi_harness import run_program


def eks_program():
    provider = aws.Provider("aws", region="us-east-1")
    opts = pulumi.ResourceOptions(providers={"aws": provider})
    role = aws.iam.Role("node-role", assume_role_policy="{}", opts=pulumi.ResourceOptions(
        provider=provider))  # fmt: skip
    cluster = eks.Cluster(
        "cluster",
        name="agent-platform-dev",
        vpc_id="vpc-1",
        private_subnet_ids=["subnet-1", "subnet-2"],
        instance_roles=[role],
        skip_default_node_group=True,
        opts=opts,
    )
    eks.ManagedNodeGroup("nodes", cluster=cluster, node_role=role, opts=opts)
    kubernetes = k8s.Provider("k8s", kubeconfig=cluster.kubeconfig_json)
    namespace = k8s.core.v1.Namespace(
        "agent", metadata={"name": "agent"}, opts=pulumi.ResourceOptions(provider=kubernetes)
    )
    k8s.apps.v1.Deployment(
        "api",
        metadata={"name": "agent-api", "namespace": namespace.metadata["name"]},
        spec={
            "replicas": 3,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "agent:1"}]},
            },
        },
        opts=pulumi.ResourceOptions(provider=kubernetes),
    )
    return {
        "kubeconfig": cluster.kubeconfig,
        "kubeconfigJson": cluster.kubeconfig_json,
        "nodeSecurityGroupId": cluster.node_security_group_id,
        "clusterSecurityGroupId": cluster.cluster_security_group_id,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "oidcProviderUrl": cluster.oidc_provider_url,
        "oidcIssuer": cluster.oidc_issuer,
        "endpoint": cluster.core.endpoint,
    }


def test_pulumi_eks_components_get_the_outputs_downstream_code_reads():
    graph = run_program("dev", program=eks_program)
    out = graph.outputs
    assert all(value for value in out.values()), out
    assert json.loads(out["kubeconfigJson"]) == out["kubeconfig"]
    assert out["kubeconfig"]["clusters"][0]["cluster"]["server"] == out["endpoint"]
    assert out["oidcProviderArn"].endswith(out["oidcIssuer"])
    assert out["oidcProviderUrl"] == f"https://{out['oidcIssuer']}"
    cluster = graph.one("eks:index:Cluster")
    role = graph.one("aws:iam/role:Role")
    assert cluster.get("instanceRoles") == [role.id]  # resource references arrive as ids
    assert graph.one("eks:index:ManagedNodeGroup").get("nodeRole") == role.id


def test_kubernetes_resources_render_to_manifests(tmp_path):
    graph = run_program("dev", program=eks_program)
    write(graph, tmp_path)
    files = sorted(p.name for p in (tmp_path / "manifests").iterdir())
    assert files == ["agent_deployment_agent-api.yaml", "cluster_namespace_agent.yaml"]
    text = (tmp_path / "manifests" / "agent_deployment_agent-api.yaml").read_text()
    assert "replicas: 3\n" in text and "apiVersion: apps/v1\n" in text


def test_an_unmocked_invoke_fails_loudly():
    def program():
        aws.ec2.get_vpc(default=True)
        return {}

    with pytest.raises(UnmockedInvokeError, match="aws:ec2/getVpc:getVpc"):
        run_program("dev", program=program)


def test_queries_insist_on_exactly_one_match(dev):
    with pytest.raises(LookupError, match="expected one aws:ec2/subnet:Subnet"):
        dev.one("aws:ec2/subnet:Subnet")
    assert dev.one("aws:ec2/subnet:Subnet", name_contains="public-a").get("cidrBlock")
    network = dev.one("agent-platform:infra:Network")
    assert {c.name for c in dev.children(network)} >= {"network-vpc", "network-igw"}
    assert dev.parent_of(dev.one("aws:ec2/vpc:Vpc")) == network


def test_secret_paths_are_reported(dev):
    group = dev.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.is_secret("authToken") and not group.is_secret("engine")
    with pytest.raises(KeyError):
        group.is_secret("noSuchInput")


def test_engine_urns_chain_every_parent_type_but_the_stack():
    # The engine's URN format (Pulumi docs, "Resource URNs"): the parent's full type chain, then
    # the resource's type and name; a child of the stack has no parent type.
    from infra.offline.mocking import engine_urn

    stack_urn = "urn:pulumi:prod::web::pulumi:pulumi:Stack::web-prod"
    component = engine_urn("prod", "web", stack_urn, "custom:resources:Resource", "site")
    assert component == "urn:pulumi:prod::web::custom:resources:Resource::site"
    bucket = engine_urn("prod", "web", component, "aws:s3/bucket:Bucket", "my-bucket")
    assert (
        bucket == "urn:pulumi:prod::web::custom:resources:Resource$aws:s3/bucket:Bucket::my-bucket"
    )
    nested = engine_urn("prod", "web", bucket, "aws:s3/bucketPolicy:BucketPolicy", "p")
    assert nested.split("::")[2] == (
        "custom:resources:Resource$aws:s3/bucket:Bucket$aws:s3/bucketPolicy:BucketPolicy"
    )


def test_a_resource_moved_under_a_new_component_answers_to_its_old_urn():
    from tests.infra.pulumi_harness import graph_of

    graph = graph_of("dev")
    job = graph.one("kubernetes:batch/v1:Job")
    assert job.engine_urn == (
        "urn:pulumi:dev::agent-platform::agent-platform:infra:Workload"
        "$agent-platform:workload:Migration$kubernetes:batch/v1:Job::workload-migrate"
    )
    assert (
        "urn:pulumi:dev::agent-platform::agent-platform:infra:Workload"
        "$kubernetes:batch/v1:Job::workload-migrate"
    ) in job.aliases


def test_a_run_leaves_no_event_loop_open_behind():
    # The SDK's mocks give each of its pool threads an event loop and never close it; an open
    # loop leaks its self-pipe sockets, and their ResourceWarning then fails whichever later
    # test the garbage collector happens to interrupt (seen in CI in the service tests).
    import asyncio
    import gc

    from tests.infra.pulumi_harness import run_program

    run_program("dev")
    gc.collect()
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    assert loops, "the run's loops are still referenced by the SDK's threads"
    assert [loop for loop in loops if not loop.is_closed()] == []
