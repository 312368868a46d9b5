"""Metrics: AMP workspace, the managed scraper and its requirements, kube-state-metrics, rules and
alert routing; /metrics stays inside the cluster."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.components.observability.prometheus import OBSERVABILITY_DIR
from tests.infra.pulumi_harness import config_error, graph_of, run_program

SCRAPER = "aws:amp/scraper:Scraper"
WORKSPACE = "aws:amp/workspace:Workspace"
NAMESPACE_RULES = "aws:amp/ruleGroupNamespace:RuleGroupNamespace"
ALERT_MANAGER = "aws:amp/alertManagerDefinition:AlertManagerDefinition"
RELEASE = "kubernetes:helm.sh/v3:Release"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
EXISTING = "arn:aws:aps:us-east-1:111122223333:workspace/ws-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


def scrape_config(graph) -> dict:
    return yaml.safe_load(graph.one(SCRAPER).get("scrapeConfiguration"))


def jobs(graph) -> dict[str, dict]:
    return {job["job_name"]: job for job in scrape_config(graph)["scrape_configs"]}


def netpol(graph, name: str) -> dict:
    (found,) = [p for p in graph.of_type(NETPOL) if p.get("metadata.name") == name]
    return found.get("spec")


# --- the scraper's requirements ----------------------------------------------------------------


def test_the_scraper_writes_the_stacks_workspace_from_the_clusters_private_subnets(graph):
    scraper, workspace = graph.one(SCRAPER), graph.one(WORKSPACE)
    assert scraper.get("destination") == {"amp": {"workspaceArn": workspace.outputs["arn"]}}
    source = scraper.get("source")["eks"]
    assert source["clusterArn"] == (
        f"arn:aws:eks:us-east-1:123456789012:cluster/agent-platform-{graph.stack}"
    )
    assert source["subnetIds"] == graph.outputs["privateSubnetIds"]
    zones = {
        s.get("availabilityZone")
        for s in graph.of_type("aws:ec2/subnet:Subnet")
        if s.id in source["subnetIds"]
    }
    assert len(zones) == 3
    (group,) = source["securityGroupIds"]
    assert group == graph.one("aws:ec2/securityGroup:SecurityGroup", "monitoring-scraper").id


def test_with_the_fewest_zones_the_scraper_still_spans_two():
    graph = run_program("dev", {"azCount": 2})
    subnets = graph.one(SCRAPER).get("source")["eks"]["subnetIds"]
    zones = {
        s.get("availabilityZone") for s in graph.of_type("aws:ec2/subnet:Subnet") if s.id in subnets
    }
    assert len(subnets) == 2 and zones == {"us-east-1a", "us-east-1b"}


def test_the_cluster_lets_aws_create_the_scrapers_access_entry(graph):
    # AMP creates the scraper's EKS access entry (read-only access policy) itself for clusters
    # in API authentication mode; they must also have a private endpoint for its ENIs.
    cluster = graph.one("eks:index:Cluster")
    assert cluster.get("authenticationMode") == "API"
    assert cluster.get("endpointPrivateAccess") is True
    assert graph.one("aws:ec2/vpc:Vpc").get("enableDnsSupport") is True


def test_the_workspace_carries_the_tag_the_scraper_adds(graph):
    workspace = graph.one(WORKSPACE)
    assert workspace.get("alias") == f"agent-platform-{graph.stack}"
    assert workspace.get("tags") == {"AMPAgentlessScraper": ""}


def test_the_scrape_configuration_is_one_amp_accepts(graph):
    config = scrape_config(graph)
    assert config["global"] == {
        "scrape_interval": "30s",
        "external_labels": {"cluster": f"agent-platform-{graph.stack}"},
    }
    for job in config["scrape_configs"]:
        assert set(job) <= {
            "job_name", "kubernetes_sd_configs", "relabel_configs", "metric_relabel_configs",
            "honor_labels", "scheme", "authorization",
        }  # fmt: skip
        assert all(set(sd) <= {"role", "namespaces"} for sd in job["kubernetes_sd_configs"])
        if "authorization" in job:
            assert job["authorization"] == {
                "type": "Bearer",
                "credentials_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            }


def test_the_service_pods_are_scraped_on_their_metrics_port_only(graph):
    agent = jobs(graph)["agent"]
    assert agent["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["agent"]}}]
    keep = agent["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["source_labels"] == [
        "__meta_kubernetes_pod_label_app_kubernetes_io_name",
        "__meta_kubernetes_pod_container_port_name",
    ]
    assert keep["regex"] == "agent-service;metrics"
    targets = {r.get("target_label") for r in agent["relabel_configs"]}
    assert {"namespace", "pod", "component"} <= targets


def test_kube_state_metrics_and_cadvisor_are_scraped(graph):
    found = jobs(graph)
    assert found["kube-state-metrics"]["honor_labels"] is True
    assert found["kube-state-metrics"]["relabel_configs"][0]["regex"] == "kube-state-metrics;http"
    cadvisor = found["cadvisor"]
    paths = [r for r in cadvisor["relabel_configs"] if r.get("target_label") == "__metrics_path__"]
    assert paths[0]["replacement"] == "/api/v1/nodes/$1/proxy/metrics/cadvisor"
    kept = cadvisor["metric_relabel_configs"][0]["regex"].split("|")
    assert {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes"} <= set(kept)


def test_kube_state_metrics_is_a_pinned_chart_in_kube_system(graph):
    (release,) = [r for r in graph.of_type(RELEASE) if r.get("chart") == "kube-state-metrics"]
    assert release.get("version") == "8.4.0"
    assert release.get("repositoryOpts") == {
        "repo": "https://prometheus-community.github.io/helm-charts"
    }
    assert release.get("namespace") == "kube-system"
    values = release.get("values")
    assert {"pods", "horizontalpodautoscalers", "deployments"} <= set(values["collectors"])
    assert values["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}


# --- /metrics never leaves the cluster ----------------------------------------------------------


def test_the_metrics_port_is_separate_and_only_the_service_port_is_exposed(graph):
    tg = graph.one("aws:lb/targetGroup:TargetGroup")
    assert tg.get("port") == 8000 and tg.get("healthCheck")["port"] == "traffic-port"
    service = graph.one("kubernetes:core/v1:Service")
    assert service.get("spec")["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    for deployment in graph.of_type("kubernetes:apps/v1:Deployment"):
        (container,) = deployment.get("spec.template.spec.containers")
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9090
        assert ports.get("http", 8000) == 8000
    assert graph.one("kubernetes:core/v1:ConfigMap").get("data")["METRICS_PORT"] == "9090"
    # The ALB's group reaches the pods on 8000 alone (test_security holds the full rule set).
    alb = graph.one("aws:ec2/securityGroup:SecurityGroup", "ingress-").id
    alb_out = [
        r
        for r in graph.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.get("securityGroupId") == alb
    ]
    assert [(r.get("fromPort"), r.get("toPort")) for r in alb_out] == [(8000, 8000)]


def test_a_network_policy_admits_the_scraper_on_the_metrics_port(graph):
    spec = netpol(graph, "metrics-ingress")
    assert spec["podSelector"]["matchExpressions"][0]["values"] == ["api", "worker"]
    # The scraper's ENIs sit in the private subnets (10.0.0.0/19, /19, /19 of a /16 in 3 AZs),
    # not anywhere in the VPC, which other stacks' pods may share.
    assert spec["ingress"] == [
        {
            "from": [
                {"ipBlock": {"cidr": c}} for c in ("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19")
            ],
            "ports": [{"protocol": "TCP", "port": 9090}],
        }
    ]
    # The public path stays 8000 only.
    assert netpol(graph, "api-ingress")["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 8000}
    ]


# --- rules and routing ----------------------------------------------------------------------------


def test_the_rule_files_are_loaded_into_the_workspace_as_they_are_in_the_repository(graph):
    workspace_id = graph.one(WORKSPACE).id
    loaded = {r.get("name"): r for r in graph.of_type(NAMESPACE_RULES)}
    assert set(loaded) == {
        f"agent-platform-{graph.stack}-recording",
        f"agent-platform-{graph.stack}-alerts",
    }
    for kind in ("recording", "alerts"):
        rules = loaded[f"agent-platform-{graph.stack}-{kind}"]
        assert rules.get("workspaceId") == workspace_id
        assert rules.get("data") == (OBSERVABILITY_DIR / "rules" / f"{kind}.yml").read_text()


def test_alerts_route_to_the_stacks_topic_over_sns(graph):
    definition = yaml.safe_load(graph.one(ALERT_MANAGER).get("definition"))
    config = yaml.safe_load(definition["alertmanager_config"])
    (receiver,) = config["receivers"]
    (sns,) = receiver["sns_configs"]
    assert sns["topic_arn"] == graph.outputs["alertTopicArn"]
    assert sns["sigv4"] == {"region": "us-east-1"}
    assert "api_url" not in sns and "http_config" not in sns  # AMP refuses both
    assert config["route"]["receiver"] == receiver["name"]
    assert set(definition["template_files"]) == set(config["templates"]) == {"sns.tmpl"}
    assert graph.one(ALERT_MANAGER).get("workspaceId") == graph.one(WORKSPACE).id


def test_an_existing_workspace_gets_the_metrics_and_rules_but_keeps_its_alert_manager():
    graph = run_program("dev", {"prometheusWorkspaceArn": EXISTING})
    assert graph.of_type(WORKSPACE) == [] and graph.of_type(ALERT_MANAGER) == []
    assert graph.one(SCRAPER).get("destination") == {"amp": {"workspaceArn": EXISTING}}
    assert {r.get("workspaceId") for r in graph.of_type(NAMESPACE_RULES)} == {
        "ws-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    }
    statements = json.loads(graph.one("aws:sns/topicPolicy:TopicPolicy").get("policy"))["Statement"]
    (aps,) = [s for s in statements if s["Principal"] == {"Service": "aps.amazonaws.com"}]
    assert aps["Condition"]["ArnEquals"] == {"aws:SourceArn": EXISTING}
    assert graph.outputs["prometheusWorkspaceArn"] == EXISTING


def test_a_workspace_in_another_region_is_refused():
    message = config_error(
        "dev", {"prometheusWorkspaceArn": EXISTING.replace("us-east-1", "eu-west-1")}
    )
    assert message.startswith("agent-platform:prometheusWorkspaceArn:")
    assert "another region" in message and "us-east-1" in message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_outputs_point_at_the_workspace_and_the_dashboards(stack):
    graph = graph_of(stack)
    workspace = graph.one(WORKSPACE)
    assert graph.outputs["prometheusWorkspaceArn"] == workspace.outputs["arn"]
    assert graph.outputs["prometheusEndpoint"] == (
        f"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/{workspace.id}/"
    )
    assert graph.outputs["dashboardName"] == f"agent-platform-{stack}"
