"""Stack configuration: per-environment defaults, one test per validation rule, docs in sync."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.config import (
    ENVIRONMENTS,
    KEYS,
    KEYS_BY_NAME,
    ConfigError,
    StackConfig,
    checks,
    environment_of,
    load_config,
)
from infra.config.docs import markdown_table, pulumi_yaml_config, show
from tests.infra.pulumi_harness import ROOT, STACKS, config_error, run_program

CERT_ID = "0a1b2c3d-1111-2222-3333-444455556666"


def loaded(stack: str, overrides: dict[str, Any] | None = None, **kwargs) -> StackConfig:
    """The StackConfig the program sees for `stack` (nothing else is created)."""
    seen: list[StackConfig] = []

    def program():
        seen.append(load_config())
        return {}

    run_program(stack, overrides, program=program, **kwargs)
    return seen[0]


def test_every_key_reaches_the_typed_config():
    cfg = loaded("prod")
    assert len(KEYS) == len({k.name for k in KEYS}) == len({k.path for k in KEYS})
    for key in KEYS:
        assert hasattr(getattr(cfg, key.path[0]), key.path[1]), key.name


def test_every_default_passes_its_own_check():
    for key in KEYS:
        for default in key.defaults:
            values = default if isinstance(default, list) else [default]
            if key.check is not None and default is not None:
                assert all(key.check(v) for v in values), (key.name, default)


@pytest.mark.parametrize("stack", STACKS)
def test_each_environment_gets_its_column_of_defaults(stack):
    cfg = loaded(stack)
    expected_env = stack
    assert cfg.environment == expected_env
    in_stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    for key in KEYS:
        if key.name == "environment" or key.full_name in in_stack_file:
            continue
        default = key.default(expected_env)
        typed = tuple(default) if isinstance(default, list) else default
        assert key.of(cfg) == typed, key.name


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
    production = {"certificateArn": f"arn:aws:acm:us-east-1:123456789012:certificate/{CERT_ID}",
                  "clusterPublicAccessCidrs": ["203.0.113.0/24"]}  # fmt: skip
    assert loaded("dev", {"environment": "prod", **production}).network.nat_gateways == "per-az"


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


# --- every refused value of every key, then every rule across keys -----------------------------

# Values of the wrong shape, per type: the parser refuses them before any check.
MALFORMED = {"integer": "three", "boolean": "maybe", "array": "[not json"}


def _shown(value):
    return str(value) if isinstance(value, int) else repr(value)


def _refused_values():
    """(key, override, the text the message must quote), derived from the key definitions."""
    cases = []
    for key in KEYS:
        if key.type == "secret":
            continue
        if key.type in MALFORMED:
            cases.append((key.name, MALFORMED[key.type], repr(MALFORMED[key.type])))
        for value in key.check.refuses if key.check else ():
            override = [value] if key.type == "array" else value
            cases.append((key.name, override, _shown(value)))
        if key.type == "array" and "at least one" in key.allowed and not key.varies:
            cases.append((key.name, [], "'[]'"))
    return cases


REFUSED = _refused_values()


@pytest.mark.parametrize(
    ("key", "value", "quoted"), REFUSED, ids=[f"{k}={v!s:.24}" for k, v, _ in REFUSED]
)
def test_a_refused_value_fails_before_any_resource_naming_key_value_and_allowed(key, value, quoted):
    message = config_error("dev", {key: value})
    assert message.startswith(f"agent-platform:{key}: {quoted} is not valid; allowed: "), message
    assert KEYS_BY_NAME[key].allowed in message or KEYS_BY_NAME[key].type == "boolean"


def test_every_checked_or_typed_key_has_refused_values():
    refused = {key for key, *_ in REFUSED}
    checked = {k.name for k in KEYS if k.check is not None or k.type in MALFORMED}
    assert checked - refused == set()


# Rules across keys: (key blamed, stack, overrides, what the message must say).
BROKEN_RULES = [
    ("dbMaxAllocatedStorage", "dev", {"dbMaxAllocatedStorage": 21}, "21 is not valid"),
    ("dbMaintenanceWindow", "dev", {"dbBackupWindow": "04:00-05:00"}, "'sun:04:00-sun:05:00'"),
    (
        "certificateArn",
        "dev",
        {"certificateArn": f"arn:aws:acm:eu-west-1:123456789012:certificate/{CERT_ID}"},
        "another region",
    ),
    ("nodeMinSize", "dev", {"nodeMinSize": 5}, "5 is greater than nodeMaxSize (3)"),
    ("nodeDesiredSize", "prod", {"nodeDesiredSize": 11}, "11 is greater than nodeMaxSize (10)"),
    ("nodeMaxSize", "prod", {"nodeMaxSize": 2}, "2 is less than nodeDesiredSize (3)"),
    ("apiMinReplicas", "dev", {"apiMinReplicas": 5}, "5 is greater than apiMaxReplicas (3)"),
    ("workerMaxReplicas", "prod", {"workerMaxReplicas": 1}, "1 is less than workerMinReplicas"),
    ("cpuRequest", "dev", {"cpuRequest": "2"}, "'2' is greater than cpuLimit ('1')"),
    ("memoryRequest", "dev", {"memoryRequest": "2Gi"}, "'2Gi' is greater than memoryLimit"),
    ("modelUrl", "dev", {"modelBackend": "openai"}, "empty while modelBackend is openai"),
    ("image", "dev", {"buildImage": False}, "empty while buildImage is false"),
    ("buildImage", "dev", {"image": "ghcr.io/org/agent:1.0"}, "true while image is set"),
]


@pytest.mark.parametrize(
    ("key", "stack", "overrides", "says"),
    BROKEN_RULES,
    ids=[f"{k}:{next(iter(o))}" for k, _, o, _ in BROKEN_RULES],
)
def test_a_broken_rule_across_keys_fails_naming_the_key(key, stack, overrides, says):
    message = config_error(stack, overrides)
    assert message.startswith(f"agent-platform:{key}: "), message
    assert says in message
    assert "allowed: " in message


def test_a_bad_value_is_reported_before_a_broken_rule():
    # The cluster's rule (min > max) would fire first by section order; the bad value wins.
    message = config_error("dev", {"nodeMinSize": 5, "logLevel": "verbose"})
    assert message.startswith("agent-platform:logLevel: 'verbose' is not valid"), message


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


def test_a_pod_gets_at_most_one_cpu():
    # One service process per pod uses one CPU: a bigger limit buys nothing; add replicas.
    message = config_error("prod", {"cpuLimit": "2"})
    assert message.startswith("agent-platform:cpuLimit: '2' is not valid; allowed: "), message
    assert "at most 1" in message
    assert "\n" not in message
    assert config_error("prod", {"cpuLimit": "1500m"}).startswith("agent-platform:cpuLimit: ")
