"""Stack configuration: per-environment defaults, one test per validation rule, docs in sync."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from infra import checks
from infra.config import ENVIRONMENTS, KEYS, ConfigError, StackConfig, environment_of, load_config
from infra.configdoc import markdown_table, pulumi_yaml_config, show
from tests.infra.pulumi_harness import ROOT, STACKS, config_error, run_program

CERT_ID = "0a1b2c3d-1111-2222-3333-444455556666"

# How each key surfaces on the typed object.
TYPED: dict[str, Callable[[StackConfig], Any]] = {
    "environment": lambda c: c.environment,
    "deletionProtection": lambda c: c.deletion_protection,
    "vpcCidr": lambda c: c.network.vpc_cidr,
    "azCount": lambda c: c.network.az_count,
    "natGateways": lambda c: c.network.nat_gateways,
    "flowLogs": lambda c: c.network.flow_logs,
    "flowLogRetentionDays": lambda c: c.network.flow_log_retention_days,
    "dbEngineVersion": lambda c: c.database.engine_version,
    "dbInstanceClass": lambda c: c.database.instance_class,
    "dbAllocatedStorage": lambda c: c.database.allocated_storage,
    "dbMaxAllocatedStorage": lambda c: c.database.max_allocated_storage,
    "dbMultiAz": lambda c: c.database.multi_az,
    "dbBackupRetentionDays": lambda c: c.database.backup_retention_days,
    "dbBackupWindow": lambda c: c.database.backup_window,
    "dbMaintenanceWindow": lambda c: c.database.maintenance_window,
    "dbPerformanceInsights": lambda c: c.database.performance_insights,
    "dbFinalSnapshot": lambda c: c.database.final_snapshot,
    "cacheEngine": lambda c: c.cache.engine,
    "cacheNodeType": lambda c: c.cache.node_type,
    "cacheNodes": lambda c: c.cache.nodes,
    "cacheSnapshotRetentionDays": lambda c: c.cache.snapshot_retention_days,
    "albIngressCidrs": lambda c: list(c.load_balancer.ingress_cidrs),
    "certificateArn": lambda c: c.load_balancer.certificate_arn or "",
    "wafRateLimit": lambda c: c.load_balancer.waf_rate_limit,
    "kubernetesVersion": lambda c: c.cluster.kubernetes_version,
    "clusterLogRetentionDays": lambda c: c.cluster.log_retention_days,
    "clusterPublicAccessCidrs": lambda c: list(c.cluster.public_access_cidrs),
    "adminRoleArns": lambda c: list(c.cluster.admin_role_arns),
    "nodeInstanceTypes": lambda c: list(c.cluster.node_instance_types),
    "nodeCapacityType": lambda c: c.cluster.node_capacity_type,
    "nodeMinSize": lambda c: c.cluster.node_min_size,
    "nodeDesiredSize": lambda c: c.cluster.node_desired_size,
    "nodeMaxSize": lambda c: c.cluster.node_max_size,
    "ecrKeepImages": lambda c: c.registry.keep_images,
    "image": lambda c: c.registry.image or "",
    "buildImage": lambda c: c.registry.build_image,
    "apiMinReplicas": lambda c: c.workload.api_min_replicas,
    "apiMaxReplicas": lambda c: c.workload.api_max_replicas,
    "workerMinReplicas": lambda c: c.workload.worker_min_replicas,
    "workerMaxReplicas": lambda c: c.workload.worker_max_replicas,
    "hpaCpuTarget": lambda c: c.workload.hpa_cpu_target,
    "hpaMemoryTarget": lambda c: c.workload.hpa_memory_target,
    "cpuRequest": lambda c: c.workload.cpu_request,
    "memoryRequest": lambda c: c.workload.memory_request,
    "cpuLimit": lambda c: c.workload.cpu_limit,
    "memoryLimit": lambda c: c.workload.memory_limit,
    "agentType": lambda c: c.workload.agent_type,
    "maxConcurrentSessions": lambda c: c.workload.max_concurrent_sessions,
    "modelBackend": lambda c: c.workload.model_backend,
    "modelUrl": lambda c: c.workload.model_url or "",
    "modelId": lambda c: c.workload.model_id or "",
    "logLevel": lambda c: c.workload.log_level,
    "modelApiKey": lambda c: c.secrets.model_api_key,
    "apiKeys": lambda c: c.secrets.api_keys,
}


def loaded(stack: str, overrides: dict[str, Any] | None = None, **kwargs) -> StackConfig:
    """The StackConfig the program sees for `stack` (nothing else is created)."""
    seen: list[StackConfig] = []

    def program():
        seen.append(load_config())
        return {}

    run_program(stack, overrides, program=program, **kwargs)
    return seen[0]


def test_every_key_reaches_the_typed_config():
    assert set(TYPED) == {k.name for k in KEYS}


@pytest.mark.parametrize("stack", STACKS)
def test_each_environment_gets_its_column_of_defaults(stack):
    cfg = loaded(stack)
    expected_env = stack
    assert cfg.environment == expected_env
    for key in KEYS:
        if key.name == "environment":
            continue
        default = key.default(expected_env)
        assert TYPED[key.name](cfg) == (default if default is not None else None), key.name


def test_prod_defaults_are_the_highly_available_ones():
    cfg = loaded("prod")
    assert cfg.network.nat_gateways == "per-az"
    assert cfg.database.multi_az and cfg.database.final_snapshot
    assert cfg.database.performance_insights and cfg.network.flow_logs
    assert cfg.deletion_protection
    assert cfg.cache.nodes >= 2 and cfg.cache.failover
    assert cfg.cluster.node_instance_types == ("t3.large",)
    assert (cfg.cluster.node_min_size, cfg.cluster.node_desired_size) == (1, 3)
    assert cfg.cluster.node_max_size == 10
    assert (cfg.workload.api_min_replicas, cfg.workload.api_max_replicas) == (3, 20)
    assert (cfg.workload.hpa_cpu_target, cfg.workload.hpa_memory_target) == (70, 80)


def test_dev_defaults_are_the_cheap_ones():
    cfg = loaded("dev")
    assert cfg.network.nat_gateways == "single"
    assert not cfg.database.multi_az and not cfg.database.final_snapshot
    assert not cfg.deletion_protection and not cfg.network.flow_logs
    assert cfg.cache.nodes == 1 and not cfg.cache.failover


def test_review_stacks_run_without_a_stack_file_on_dev_defaults():
    assert not (ROOT / "Pulumi.pr-123.yaml").exists()
    cfg = loaded("pr-123")
    assert cfg.environment == "dev"
    assert cfg.network.nat_gateways == "single"
    assert cfg.region == "us-east-1"  # Pulumi.yaml's project-level aws:region


def test_environment_key_overrides_the_stack_name():
    assert loaded("dev", {"environment": "prod"}).network.nat_gateways == "per-az"


def test_a_key_set_in_the_stack_overrides_the_environment_default():
    cfg = loaded("prod", {"natGateways": "single", "cacheNodes": 3})
    assert (cfg.network.nat_gateways, cfg.cache.nodes) == ("single", 3)


def test_lists_accept_json_or_comma_separated_values():
    cfg = loaded("dev", {"nodeInstanceTypes": "t3.large, m6i.xlarge"})
    assert cfg.cluster.node_instance_types == ("t3.large", "m6i.xlarge")
    cfg = loaded("dev", {"albIngressCidrs": ["203.0.113.0/24", "198.51.100.0/24"]})
    assert cfg.load_balancer.ingress_cidrs == ("203.0.113.0/24", "198.51.100.0/24")


def test_log_level_is_case_insensitive():
    assert loaded("dev", {"logLevel": "debug"}).workload.log_level == "DEBUG"


def test_stack_names_map_to_environments():
    assert [environment_of(s) for s in ("dev", "staging", "prod", "pr-7")] == [
        "dev",
        "staging",
        "prod",
        "dev",
    ]
    assert environment_of("feature-x", "staging") == "staging"
    with pytest.raises(ConfigError, match=r"^agent-platform:environment: not set and stack"):
        environment_of("feature-x")


def test_secrets_stay_secret_outputs():
    def program():
        cfg = load_config()
        return {"apiKeys": cfg.secrets.api_keys, "modelApiKey": cfg.secrets.model_api_key}

    graph = run_program("dev", program=program, secrets={"apiKeys": "k-123,k-456"})
    assert graph.outputs["apiKeys"] == "k-123,k-456"
    assert "apiKeys" in graph.secret_outputs
    assert graph.outputs["modelApiKey"] is None


# --- one test per validation rule ---------------------------------------------------------------

BAD_VALUES = [
    # (key, stack, overrides, the value the message must quote)
    ("vpcCidr", "dev", {"vpcCidr": "10.0.0.0/33"}, "'10.0.0.0/33'"),
    ("vpcCidr", "dev", {"vpcCidr": "10.0.0.1/16"}, "'10.0.0.1/16'"),  # host bits
    ("vpcCidr", "dev", {"vpcCidr": "8.8.0.0/16"}, "'8.8.0.0/16'"),  # not RFC 1918
    ("vpcCidr", "dev", {"vpcCidr": "10.0.0.0/24"}, "'10.0.0.0/24'"),  # too small to carve
    ("azCount", "dev", {"azCount": 1}, "1"),
    ("azCount", "dev", {"azCount": 7}, "7"),
    ("azCount", "dev", {"azCount": "three"}, "'three'"),
    ("natGateways", "dev", {"natGateways": "none"}, "'none'"),
    ("flowLogs", "dev", {"flowLogs": "yes"}, "'yes'"),
    ("flowLogRetentionDays", "dev", {"flowLogRetentionDays": 10}, "10"),
    ("deletionProtection", "dev", {"deletionProtection": "maybe"}, "'maybe'"),
    ("environment", "dev", {"environment": "production"}, "'production'"),
    ("dbEngineVersion", "dev", {"dbEngineVersion": "13"}, "'13'"),
    ("dbInstanceClass", "dev", {"dbInstanceClass": "t3.medium"}, "'t3.medium'"),
    ("dbAllocatedStorage", "dev", {"dbAllocatedStorage": 10}, "10"),
    ("dbMaxAllocatedStorage", "dev", {"dbMaxAllocatedStorage": 21}, "21"),  # < 110% of 20
    ("dbMultiAz", "dev", {"dbMultiAz": "2"}, "'2'"),
    ("dbPerformanceInsights", "dev", {"dbPerformanceInsights": "on"}, "'on'"),
    ("dbFinalSnapshot", "dev", {"dbFinalSnapshot": "no"}, "'no'"),
    ("dbBackupRetentionDays", "dev", {"dbBackupRetentionDays": 0}, "0"),
    ("dbBackupWindow", "dev", {"dbBackupWindow": "03:00-03:10"}, "'03:00-03:10'"),
    ("dbBackupWindow", "dev", {"dbBackupWindow": "3am"}, "'3am'"),
    ("dbMaintenanceWindow", "dev", {"dbMaintenanceWindow": "mon:25:00-mon:26:00"}, "'mon:25"),
    ("dbMaintenanceWindow", "dev", {"dbBackupWindow": "04:00-05:00"}, "'sun:04:00-sun:05:00'"),
    ("cacheEngine", "dev", {"cacheEngine": "memcached"}, "'memcached'"),
    ("cacheNodeType", "dev", {"cacheNodeType": "cache.t3"}, "'cache.t3'"),
    ("cacheNodes", "dev", {"cacheNodes": 7}, "7"),
    ("cacheSnapshotRetentionDays", "dev", {"cacheSnapshotRetentionDays": 40}, "40"),
    ("albIngressCidrs", "dev", {"albIngressCidrs": ["1.2.3.4/40"]}, "'1.2.3.4/40'"),
    ("albIngressCidrs", "dev", {"albIngressCidrs": []}, "'[]'"),
    ("albIngressCidrs", "dev", {"albIngressCidrs": "[not json"}, "'[not json'"),
    ("certificateArn", "dev", {"certificateArn": "not-an-arn"}, "'not-an-arn'"),
    (
        "certificateArn",
        "dev",
        {"certificateArn": f"arn:aws:acm:eu-west-1:123456789012:certificate/{CERT_ID}"},
        "another region",
    ),
    ("wafRateLimit", "dev", {"wafRateLimit": 5}, "5"),
    ("kubernetesVersion", "dev", {"kubernetesVersion": "1.29"}, "'1.29'"),
    ("kubernetesVersion", "dev", {"kubernetesVersion": "1.34"}, "'1.34'"),  # std support ends
    ("clusterLogRetentionDays", "dev", {"clusterLogRetentionDays": 45}, "45"),
    ("clusterPublicAccessCidrs", "dev", {"clusterPublicAccessCidrs": ["0.0.0.0/33"]}, "'0.0"),
    ("adminRoleArns", "dev", {"adminRoleArns": ["arn:aws:iam::123:role/x"]}, "'arn:aws:iam::123"),
    ("nodeInstanceTypes", "dev", {"nodeInstanceTypes": ["t3.larg"]}, "'t3.larg'"),
    ("nodeInstanceTypes", "dev", {"nodeInstanceTypes": ["m7g.large"]}, "'m7g.large'"),  # arm64
    ("nodeCapacityType", "dev", {"nodeCapacityType": "spot"}, "'spot'"),
    ("nodeMinSize", "dev", {"nodeMinSize": 5}, "5 is greater than nodeMaxSize (3)"),
    ("nodeDesiredSize", "prod", {"nodeDesiredSize": 11}, "11 is greater than nodeMaxSize (10)"),
    ("nodeMaxSize", "prod", {"nodeMaxSize": 2}, "2 is less than nodeDesiredSize (3)"),
    ("nodeMaxSize", "dev", {"nodeMaxSize": 451}, "451"),
    ("apiMinReplicas", "dev", {"apiMinReplicas": 5}, "5 is greater than apiMaxReplicas (3)"),
    ("apiMaxReplicas", "dev", {"apiMaxReplicas": 101}, "101"),
    ("workerMinReplicas", "dev", {"workerMinReplicas": 0}, "0"),
    ("workerMaxReplicas", "prod", {"workerMaxReplicas": 1}, "1 is less than workerMinReplicas"),
    ("hpaCpuTarget", "dev", {"hpaCpuTarget": 0}, "0"),
    ("hpaMemoryTarget", "dev", {"hpaMemoryTarget": 150}, "150"),
    ("cpuRequest", "dev", {"cpuRequest": "500x"}, "'500x'"),
    ("memoryRequest", "dev", {"memoryRequest": "512mb"}, "'512mb'"),
    ("cpuRequest", "dev", {"cpuRequest": "2"}, "'2' is greater than cpuLimit ('1')"),
    ("memoryRequest", "dev", {"memoryRequest": "2Gi"}, "'2Gi' is greater than memoryLimit"),
    ("cpuLimit", "dev", {"cpuLimit": "0"}, "'0'"),
    ("memoryLimit", "dev", {"memoryLimit": "1 Gi"}, "'1 Gi'"),
    ("agentType", "dev", {"agentType": "has space"}, "'has space'"),
    ("maxConcurrentSessions", "dev", {"maxConcurrentSessions": 0}, "0"),
    ("modelBackend", "dev", {"modelBackend": "anthropic"}, "'anthropic'"),
    ("modelUrl", "dev", {"modelUrl": "ftp://models"}, "'ftp://models'"),
    ("modelUrl", "dev", {"modelBackend": "openai"}, "empty while modelBackend is openai"),
    ("modelId", "dev", {"modelId": "gpt 4"}, "'gpt 4'"),
    ("logLevel", "dev", {"logLevel": "verbose"}, "'verbose'"),
    ("image", "dev", {"image": "Registry/UPPER:tag"}, "'Registry/UPPER:tag'"),
    ("image", "dev", {"buildImage": False}, "empty while buildImage is false"),
    ("image", "dev", {"buildImage": False, "image": "ghcr.io/org/agent:latest"}, "agent:latest'"),
    ("image", "dev", {"buildImage": False, "image": "ghcr.io/org/agent"}, "'ghcr.io/org/agent'"),
    ("buildImage", "dev", {"image": "ghcr.io/org/agent:1.0"}, "true while image is set"),
    ("ecrKeepImages", "dev", {"ecrKeepImages": 0}, "0"),
    ("buildImage", "dev", {"buildImage": "sometimes"}, "'sometimes'"),
]


@pytest.mark.parametrize(
    ("key", "stack", "overrides", "quoted"),
    BAD_VALUES,
    ids=[f"{k}={next(iter(o.values()))!s:.24}" for k, _, o, _ in BAD_VALUES],
)
def test_a_bad_value_fails_before_any_resource_naming_key_value_and_allowed(
    key, stack, overrides, quoted
):
    message = config_error(stack, overrides)
    assert message.startswith(f"agent-platform:{key}: "), message
    assert quoted in message
    assert "allowed: " in message


def test_every_key_with_a_check_has_a_bad_value_test():
    tested = {key for key, *_ in BAD_VALUES}
    checked = {k.name for k in KEYS if k.check is not None or k.type in ("integer", "boolean")}
    assert checked - tested == set()


def test_more_azs_than_the_region_has_is_a_config_error():
    message = config_error("prod", {"azCount": 4}, zones=["us-east-1a", "us-east-1b", "us-east-1c"])
    assert message.startswith("agent-platform:azCount: 4 is not valid; allowed: at most 3")


def test_a_missing_region_is_a_config_error():
    message = config_error("dev", {"aws:region": None})
    assert message.startswith("aws:region: '' is not valid")


def test_a_malformed_region_is_a_config_error():
    assert config_error("dev", {"aws:region": "moon-1"}).startswith("aws:region: 'moon-1'")


def test_an_unknown_key_is_rejected_with_a_suggestion():
    message = config_error("dev", {"vpcCird": "10.0.0.0/16"})
    assert message.startswith("agent-platform:vpcCird: unknown key; did you mean vpcCidr?")


@pytest.mark.parametrize("key", ["apiKeys", "modelApiKey"])
def test_a_secret_set_in_plain_text_is_rejected_without_echoing_it(key):
    message = config_error("dev", {key: "plain-text-key-123"})
    assert message.startswith(f"agent-platform:{key}: set in plain text")
    assert "plain-text-key-123" not in message


# --- the check functions at their boundaries ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [("10.0.0.0/16", True), ("172.16.0.0/20", True), ("192.168.0.0/16", True),
     ("10.0.0.0/15", False), ("10.0.0.0/21", False), ("100.64.0.0/16", False)],
)  # fmt: skip
def test_vpc_cidr_bounds(value, ok):
    assert checks.vpc_cidr(value) is ok


@pytest.mark.parametrize(
    ("value", "millicores"),
    [("500m", 500), ("1", 1000), ("0.5", 500), ("2", 2000), ("1Gi", 2**30 * 1000)],
)
def test_quantities_parse_like_kubernetes(value, millicores):
    assert checks.quantity(value) * 1000 == millicores


def test_windows_that_touch_do_not_overlap_but_shared_minutes_do():
    sunday_maintenance = checks.weekly_window("sun:04:00-sun:05:00")
    assert not checks.windows_overlap(checks.daily_window("03:00-04:00"), sunday_maintenance)
    assert checks.windows_overlap(checks.daily_window("04:30-05:30"), sunday_maintenance)
    wrapping = checks.weekly_window("sun:23:30-mon:00:30")
    assert checks.windows_overlap(checks.daily_window("00:00-01:00"), wrapping)


@pytest.mark.parametrize(
    "image",
    ["nginx", "ghcr.io/org/agent:1.0", "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:sha-1",
     "localhost:5000/a/b@sha256:" + "a" * 64],
)  # fmt: skip
def test_image_references_that_registries_accept(image):
    assert checks.image_reference(image)


# --- documentation stays in sync with the code --------------------------------------------------


def test_pulumi_yaml_declares_every_key_as_generated_from_the_code():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "agent-platform"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": "venv"},
    }
    assert project["config"] == pulumi_yaml_config()


def test_environment_dependent_keys_default_to_empty_in_pulumi_yaml():
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in KEYS:
        if key.varies:
            assert config[key.name]["default"] in ("", []), key.name
            for env, value in zip(ENVIRONMENTS, key.defaults, strict=True):
                assert f"{env} {show(value)}" in config[key.name]["description"], key.name


def test_readme_has_the_configuration_reference_table():
    readme = (ROOT / "README.md").read_text()
    for line in markdown_table().splitlines():
        assert line in readme, line


def test_stack_files_only_set_known_keys():
    known = {k.name for k in KEYS}
    for stack in STACKS:
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["aws:region"]
        own = {k.split(":", 1)[1] for k in config if k.startswith("agent-platform:")}
        assert own <= known
        assert not any(re.match(r"^(?!agent-platform:|aws:|pulumi:)", k) for k in config)
