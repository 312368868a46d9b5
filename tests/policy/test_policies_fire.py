"""Every policy fires on a deliberately broken graph, at the broken resource, saying why.

Foundation resources (network, RDS, ElastiCache, ALB) are broken in the program's own graph;
EKS, ECR and workload cases start from the hand-built records of reference_records.py, which
pass every policy, and break one thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from agent_platform_policies import ALL_POLICIES

import tests.policy.reference_records as rec
from tests.policy.policy_harness import (
    PolicyGraph,
    program_graph,
    resource,
    violations,
)

POLICIES = {p.name: p for p in ALL_POLICIES}


@dataclass(frozen=True)
class Case:
    """A policy, a broken graph, the resource it must blame and words its message must hold."""

    id: str
    policy: str
    graph: Callable[[], PolicyGraph]
    blamed: str
    says: str
    also: tuple[str, ...] = ()  # other resources the same break exposes


def dev() -> PolicyGraph:
    return program_graph("dev")


def prod() -> PolicyGraph:
    return program_graph("prod")


def good(*records) -> Callable[[], PolicyGraph]:
    return lambda: rec.replaced(rec.good_graph(), *records)


def _public_database_subnets() -> PolicyGraph:
    graph = dev()
    route = resource("dev", "aws:ec2/route:Route", "database-to-igw", {}, provider=rec.PROVIDER)
    return graph.plus(
        route,
        dependencies={
            route.urn: {
                "routeTableId": [graph.named("network-database-rt").urn],
                "gatewayId": [graph.named("network-igw").urn],
            }
        },
    )


def _https_listener(ssl_policy: str) -> PolicyGraph:
    graph = dev()
    listener = resource(
        "dev",
        "aws:lb/listener:Listener",
        "ingress-https",
        {
            "protocol": "HTTPS",
            "port": 443.0,
            "sslPolicy": ssl_policy,
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "defaultActions": [{"type": "forward"}],
        },
        provider=rec.PROVIDER,
    )
    alb = graph.named("ingress-alb")
    return graph.plus(listener, dependencies={listener.urn: {"loadBalancerArn": [alb.urn]}})


def _with_default_tags(tags: dict[str, str] | None) -> PolicyGraph:
    encoded = json.dumps({"tags": tags}) if tags is not None else None
    return dev().with_inputs("aws", defaultTags=encoded)


def _node_class(graph: PolicyGraph, **changes) -> PolicyGraph:
    """`graph` with the EC2NodeClass spec changed (dotted keys: metadataOptions.httpTokens)."""
    spec = json.loads(json.dumps(graph.named("karpenter-node-class").raw_inputs["spec"]))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return graph.with_inputs("karpenter-node-class", spec=spec)


def _pool_without_limits(graph: PolicyGraph, pool: str) -> PolicyGraph:
    spec = {**graph.named(f"karpenter-pool-{pool}").raw_inputs["spec"], "limits": {"cpu": "8"}}
    return graph.with_inputs(f"karpenter-pool-{pool}", spec=spec)


CASES = [
    # Karpenter
    Case("node-class-imdsv1", "karpenter-node-class-hardened",
         lambda: _node_class(dev(), metadataOptions__httpTokens="optional"),
         "karpenter-node-class", "httpTokens='required'"),
    Case("node-class-hop-2", "karpenter-node-class-hardened",
         lambda: _node_class(dev(), metadataOptions__httpPutResponseHopLimit=2),
         "karpenter-node-class", "httpPutResponseHopLimit=1"),
    Case("node-class-unencrypted", "karpenter-node-class-hardened",
         lambda: _node_class(dev(), blockDeviceMappings__0__ebs__encrypted=False),
         "karpenter-node-class", "/dev/xvda unencrypted"),
    Case("node-class-default-volume", "karpenter-node-class-hardened",
         lambda: _node_class(dev(), blockDeviceMappings=[]),
         "karpenter-node-class", "declares no blockDeviceMappings"),
    Case("prod-pool-no-memory-limit", "prod-node-pool-limits",
         lambda: _pool_without_limits(prod(), "workers"),
         "karpenter-pool-workers", "no memory limit"),
    # Encryption at rest
    Case("rds-unencrypted", "rds-storage-encrypted",
         lambda: dev().with_inputs("database-instance", storageEncrypted=False),
         "database-instance", "storageEncrypted=true"),
    Case("cache-unencrypted", "elasticache-encrypted-at-rest",
         lambda: dev().with_inputs("cache-group", atRestEncryptionEnabled=False),
         "cache-group", "atRestEncryptionEnabled=true"),
    Case("eks-component-no-kms", "eks-secrets-encrypted",
         good(rec.eks_component(encryptionConfigKeyArn=None)), "eks", "encryptionConfigKeyArn"),
    Case("eks-cluster-no-secrets", "eks-secrets-encrypted",
         good(rec.eks_cluster(encryptionConfig={"provider": {"keyArn": rec.KMS_KEY},
                                                 "resources": []})),
         "eks-cluster", "resources ['secrets']"),
    Case("ecr-undeclared", "ecr-encrypted-at-rest",
         good(rec.ecr_repository(encryptionConfigurations=None)), "repository",
         "encryptionConfigurations"),
    # Encryption in transit
    Case("redis-plaintext", "redis-tls-required",
         lambda: dev().with_inputs("cache-group", transitEncryptionEnabled=False),
         "cache-group", "transitEncryptionEnabled=true"),
    Case("redis-preferred", "redis-tls-required",
         lambda: dev().with_inputs("cache-group", transitEncryptionMode="preferred"),
         "cache-group", "'required'"),
    Case("rds-ssl-off", "rds-tls-required",
         lambda: dev().with_inputs("database-params", parameters=[]),
         "database-instance", "must set rds.force_ssl=1"),
    Case("rds-default-parameters", "rds-tls-required",
         lambda: dev().with_inputs("database-instance", parameterGroupName=None),
         "database-instance", "no parameter group"),
    Case("http-beside-https", "alb-https-when-certificate",
         lambda: _https_listener("ELBSecurityPolicy-TLS13-1-2-2021-06"),
         "ingress-http", "redirect to HTTPS"),
    Case("https-old-tls", "alb-https-when-certificate",
         lambda: _https_listener("ELBSecurityPolicy-2016-08").with_inputs(
             "ingress-http", defaultActions=[
                 {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}]),
         "ingress-https", "TLS older than 1.2"),
    # Exposure
    Case("rds-public", "no-public-data-stores",
         lambda: dev().with_inputs("database-instance", publiclyAccessible=True),
         "database-instance", "publiclyAccessible=false"),
    Case("data-subnets-routed", "no-public-data-stores", _public_database_subnets,
         "database-instance", "public subnets", also=("cache-group",)),
    Case("db-open-to-world", "no-open-ingress",
         lambda: dev().with_inputs("database-from-clients-0", cidrIpv4="0.0.0.0/0",
                                   referencedSecurityGroupId=None),
         "database-from-clients-0", "0.0.0.0/0 on tcp 5432-5432"),
    Case("alb-open-on-8080", "no-open-ingress",
         lambda: dev().with_inputs("ingress-http-in-0", fromPort=8080.0, toPort=8080.0),
         "ingress-http-in-0", "tcp 8080-8080"),
    # EKS
    Case("node-group-imdsv1", "nodes-require-imdsv2",
         good(rec.managed_node_group(enableIMDSv2=False)), "general", "enableIMDSv2=true"),
    Case("default-node-group", "nodes-require-imdsv2",
         good(rec.eks_component(skipDefaultNodeGroup=False)), "eks", "skipDefaultNodeGroup"),
    Case("launch-template-imdsv1", "nodes-require-imdsv2",
         good(rec.launch_template(http_tokens="optional")), "nodes", "httpTokens='required'"),
    Case("eks-node-group-default-template", "nodes-require-imdsv2",
         good(rec.eks_node_group(launchTemplate=None)), "general-ng", "default launch template"),
    Case("component-logs", "eks-control-plane-logging",
         good(rec.eks_component(enabledClusterLogTypes=["api"])), "eks",
         "does not log audit, authenticator"),
    Case("cluster-logs", "eks-control-plane-logging",
         good(rec.eks_cluster(enabledClusterLogTypes=None)), "eks-cluster",
         "does not log api, audit, authenticator"),
    # Prod
    Case("prod-rds-unprotected", "prod-deletion-protection",
         lambda: prod().with_inputs("database-instance", deletionProtection=False),
         "database-instance", "deletionProtection=true"),
    Case("prod-alb-unprotected", "prod-deletion-protection",
         lambda: prod().with_inputs("ingress-alb", enableDeletionProtection=False),
         "ingress-alb", "enableDeletionProtection=true"),
    Case("prod-short-backups", "prod-backups",
         lambda: prod().with_inputs("database-instance", backupRetentionPeriod=1.0),
         "database-instance", "keeps 1 days of backups"),
    Case("prod-no-final-snapshot", "prod-backups",
         lambda: prod().with_inputs("database-instance", skipFinalSnapshot=True),
         "database-instance", "without a final snapshot"),
    Case("prod-no-cache-snapshots", "prod-backups",
         lambda: prod().with_inputs("cache-group", snapshotRetentionLimit=0.0),
         "cache-group", "snapshotRetentionLimit to at least 1"),
    Case("prod-single-az-rds", "prod-multi-az",
         lambda: prod().with_inputs("database-instance", multiAz=False),
         "database-instance", "multiAz=true"),
    Case("prod-plain-http", "prod-alb-https",
         lambda: program_graph("prod", {"certificateArn": None, "allowPlainHttp": True}),
         "ingress-alb", "no HTTPS listener with a certificate"),
    Case("prod-https-without-certificate", "prod-alb-https",
         lambda: prod().with_inputs("ingress-https", certificateArn=None),
         "ingress-alb", "no HTTPS listener with a certificate", also=()),
    Case("prod-eks-api-open", "prod-eks-api-restricted",
         lambda: program_graph("prod", {"clusterPublicAccessCidrs": ["0.0.0.0/0"]}),
         "cluster-eks", "admits 0.0.0.0/0 to its Kubernetes API"),
    Case("prod-eks-api-no-allow-list", "prod-eks-api-restricted",
         lambda: prod().with_inputs("cluster-eks", publicAccessCidrs=None),
         "cluster-eks", "without an allow-list"),
    Case("prod-eks-cluster-open", "prod-eks-api-restricted",
         lambda: prod().plus(rec.eks_cluster(vpcConfig={
             "endpointPublicAccess": True, "publicAccessCidrs": ["10.1.0.0/16", "::/0"]})),
         "eks-cluster", "admits ::/0"),
    Case("prod-single-node-cache", "prod-multi-az",
         lambda: prod().with_inputs("cache-group", numCacheClusters=1.0,
                                    automaticFailoverEnabled=False, multiAzEnabled=False),
         "cache-group", "numCacheClusters to at least 2"),
    # Operations (prod)
    Case("prod-alb-no-access-logs", "prod-alb-access-logs",
         lambda: prod().with_inputs("ingress-alb", accessLogs=None),
         "ingress-alb", "keeps no access logs"),
    Case("prod-alb-access-logs-off", "prod-alb-access-logs",
         lambda: prod().with_inputs("ingress-alb", accessLogs={"bucket": "b", "enabled": False}),
         "ingress-alb", "enabled=true"),
    Case("prod-waf-not-logged", "prod-waf-logging",
         lambda: prod().without("monitoring-waf-logging"), "ingress-waf", "logs no requests"),
    Case("prod-waf-logs-api-keys", "prod-waf-logging",
         lambda: prod().with_inputs("monitoring-waf-logging", redactedFields=[
             {"singleHeader": {"name": "cookie"}}]),
         "monitoring-waf-logging", "redact the 'authorization' header"),
    Case("prod-waf-logs-elsewhere", "prod-waf-logging",
         lambda: prod().with_inputs("monitoring-waf-logging", logDestinationConfigs=[
             "arn:aws:s3:::my-logs"]),
         "monitoring-waf-logging", "named aws-waf-logs-*"),
    Case("prod-no-alb-5xx-alarm", "prod-alarms", lambda: prod().without("monitoring-alarm-alb-5xx"),
         "ingress-alb", "its 5xx (HTTPCode_ELB_5XX_Count)"),
    Case("prod-no-unhealthy-alarm", "prod-alarms",
         lambda: prod().without("monitoring-alarm-unhealthy-targets"),
         "ingress-alb", "unhealthy targets"),
    Case("prod-no-storage-alarm", "prod-alarms",
         lambda: prod().without("monitoring-alarm-db-free-storage"),
         "database-instance", "free storage (FreeStorageSpace)"),
    Case("prod-storage-alarm-tells-nobody", "prod-alarms",
         lambda: prod().with_inputs("monitoring-alarm-db-free-storage", alarmActions=[]),
         "database-instance", "free storage (FreeStorageSpace)"),
    Case("prod-cache-node-unwatched", "prod-alarms",
         lambda: prod().without("monitoring-alarm-cache-002-memory"),
         "cache-group", "memory (DatabaseMemoryUsagePercentage) of each node: found 1, need 2"),
    # Tags
    Case("no-default-tags", "required-tags", lambda: _with_default_tags(None),
         "network-vpc", "lacks tags project, stack, environment, managed-by"),
    Case("default-tags-incomplete", "required-tags",
         lambda: _with_default_tags({"project": "agent-platform", "stack": "dev"}),
         "database-instance", "lacks tags environment, managed-by"),
    # Workloads
    Case("no-liveness", "deployment-probes", good(rec.deployment(containers=[
        rec.container(livenessProbe=None)])), "agent-api", "no livenessProbe"),
    Case("no-memory-limit", "deployment-resource-limits", good(rec.deployment(containers=[
        rec.container(resources={"requests": {"cpu": "1", "memory": "1Gi"},
                                 "limits": {"cpu": "1"}})])),
         "agent-api", "resources.limits.memory"),
    Case("root-user", "deployment-non-root", good(rec.deployment(containers=[
        rec.container(securityContext={"runAsUser": 0.0, "allowPrivilegeEscalation": False})])),
         "agent-api", "runAsNonRoot is not true; runAsUser is 0"),
    Case("privilege-escalation", "deployment-non-root", good(rec.deployment(containers=[
        rec.container(securityContext={"runAsNonRoot": True})])),
         "agent-api", "allowPrivilegeEscalation is not false"),
    Case("hpa-targets-other", "deployment-has-hpa", good(rec.hpa(target="agent-worker")),
         "agent-api", "no HorizontalPodAutoscaler"),
    Case("pdb-selects-other", "deployment-has-pdb",
         good(rec.pdb({"app.kubernetes.io/component": "worker"})),
         "agent-api", "no PodDisruptionBudget"),
    Case("latest-tag", "no-latest-image-tag", good(rec.deployment(containers=[
        rec.container(image="ghcr.io/org/agent:latest")])), "agent-api", "pin a version"),
    Case("untagged-image", "no-latest-image-tag", good(rec.deployment(containers=[
        rec.container(image="ghcr.io/org/agent")])), "agent-api", "without a tag"),
    # Advisory
    Case("alb-without-waf", "alb-waf-attached", lambda: dev().without("ingress-waf-association"),
         "ingress-alb", "no WAF web ACL"),
    Case("alb-invalid-headers", "alb-drop-invalid-headers",
         lambda: dev().with_inputs("ingress-alb", dropInvalidHeaderFields=False),
         "ingress-alb", "dropInvalidHeaderFields=true"),
    Case("prod-no-flow-log", "prod-vpc-flow-logs", lambda: prod().without("network-flow-log"),
         "network-vpc", "no flow log"),
    Case("prod-no-insights", "prod-rds-performance-insights",
         lambda: prod().with_inputs("database-instance", performanceInsightsEnabled=False),
         "database-instance", "performanceInsightsEnabled=true"),
    Case("ecr-no-scan", "ecr-scan-on-push",
         good(rec.ecr_repository(imageScanningConfiguration={"scanOnPush": False})),
         "repository", "scanOnPush=true"),
    Case("writable-root", "deployment-read-only-root-filesystem", good(rec.deployment(
        containers=[rec.container(securityContext={
            "runAsNonRoot": True, "allowPrivilegeEscalation": False})])),
         "agent-api", "readOnlyRootFilesystem=true"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.policy}:{c.id}")
def test_policy_fires_at_the_broken_resource(case: Case):
    graph = case.graph()
    found = violations(POLICIES[case.policy], graph)
    blamed = graph.named(case.blamed).urn
    assert found, f"{case.policy} reported nothing"
    at_blamed = [v.message for v in found if v.urn == blamed]
    assert any(case.says in m for m in at_blamed), (case.says, found)
    if case.policy != "required-tags":  # a provider without tags leaves every resource bare
        assert {v.urn for v in found} == {blamed} | {graph.named(n).urn for n in case.also}


def test_every_policy_has_a_broken_case():
    assert {p.name for p in ALL_POLICIES} - {c.policy for c in CASES} == set()
