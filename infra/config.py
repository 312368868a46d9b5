"""Stack configuration: one typed object, read and validated once, before any resource exists.

Every key of the `agent-platform:` namespace is declared in `KEYS` with its type, its default
in each environment (dev, staging, prod; review stacks `pr-<n>` use the dev column) and what it
allows. `load_config()` reads them through `pulumi.Config`, applies the defaults of the stack's
environment and raises `ConfigError` - one line naming the key, the value and what is allowed -
for anything AWS or Kubernetes would reject, for unknown keys and for secrets set in plain text.

Pulumi.yaml declares the same keys (generated from `KEYS`, see `infra.configdoc`). A typed
project key without a default would be required in every stack, so keys whose default differs
per environment are declared there with an empty default, which here means "the environment's
default".
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from infra import checks

NAMESPACE = "agent-platform"
ENVIRONMENTS = ("dev", "staging", "prod")
REVIEW_STACK = re.compile(r"^pr-[0-9]+$")

# ElastiCache engine -> (engine version, parameter group family).
CACHE_ENGINES = {"redis": ("7.1", "redis7"), "valkey": ("8.0", "valkey8")}
NODE_GROUP_MAX_SIZE = 450  # EKS managed node group quota


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. A RunError, so `pulumi preview` prints only the message."""


@dataclass(frozen=True)
class Key:
    """One configuration key: type, per-environment defaults, what it allows, what it does."""

    name: str
    type: str  # string | integer | boolean | array | secret
    defaults: tuple[Any, Any, Any]  # dev, staging, prod
    allowed: str
    description: str
    check: Callable[[Any], bool] | None = None
    section: str = ""

    def default(self, environment: str) -> Any:
        """The default in `environment` (dev, staging or prod)."""
        return self.defaults[ENVIRONMENTS.index(environment)]

    @property
    def varies(self) -> bool:
        """True when the default depends on the environment."""
        return len({json.dumps(d) for d in self.defaults}) > 1

    @property
    def full_name(self) -> str:
        """The key as `pulumi config` spells it."""
        return f"{NAMESPACE}:{self.name}"


def _same(value: Any) -> tuple[Any, Any, Any]:
    return (value, value, value)


def _between(lo: int, hi: int) -> Callable[[int], bool]:
    return lambda value: lo <= value <= hi


def _one_of(*allowed: str) -> Callable[[str], bool]:
    return lambda value: value in allowed


def _optional(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: value == "" or check(value)


def _quantity(value: str) -> bool:
    number = checks.quantity(value)
    return number is not None and number > 0


def _section(title: str, *keys: Key) -> tuple[Key, ...]:
    return tuple(Key(**{**k.__dict__, "section": title}) for k in keys)


_IPV4_CIDRS = "IPv4 CIDRs in canonical form such as 203.0.113.0/24, at least one"

#: Every key, its defaults per environment (dev, staging, prod) and what it allows.
KEYS: tuple[Key, ...] = (
    *_section(
        "Stack",
        Key("environment", "string", _same(""), "dev | staging | prod",
            "Which column of defaults applies. Empty: from the stack name (dev, staging, prod; "
            "pr-<n> review stacks are dev).", _optional(_one_of(*ENVIRONMENTS))),
        Key("deletionProtection", "boolean", (False, True, True), "true | false",
            "Deletion protection on the RDS instance and the load balancer."),
    ),
    *_section(
        "Network",
        Key("vpcCidr", "string", _same("10.0.0.0/16"),
            "an RFC 1918 IPv4 network with prefix /16 to /20, e.g. 10.0.0.0/16",
            "CIDR of the VPC; subnets are carved from it.", checks.vpc_cidr),
        Key("azCount", "integer", _same(3), "2..6",
            "Availability zones used; each gets a public, a private and a database subnet.",
            _between(2, 6)),
        Key("natGateways", "string", ("single", "per-az", "per-az"), "single | per-az",
            "One NAT gateway for all private subnets, or one per AZ (survives an AZ outage).",
            _one_of("single", "per-az")),
        Key("flowLogs", "boolean", (False, True, True), "true | false",
            "VPC flow logs (all traffic) to CloudWatch Logs."),
        Key("flowLogRetentionDays", "integer", _same(90),
            "a CloudWatch Logs retention: " + ", ".join(map(str, checks.CLOUDWATCH_RETENTION_DAYS)),
            "Days flow logs are kept.", lambda v: v in checks.CLOUDWATCH_RETENTION_DAYS),
    ),
    *_section(
        "Database (RDS PostgreSQL)",
        Key("dbEngineVersion", "string", _same("17"),
            " | ".join(checks.POSTGRES_MAJOR_VERSIONS),
            "PostgreSQL major version; RDS applies minor upgrades.",
            _one_of(*checks.POSTGRES_MAJOR_VERSIONS)),
        Key("dbInstanceClass", "string", ("db.t3.micro", "db.t3.small", "db.t3.medium"),
            "an RDS instance class such as db.t3.medium", "RDS instance class.",
            checks.rds_instance_class),
        Key("dbAllocatedStorage", "integer", (20, 50, 100), "20..65536 (GiB)",
            "Initial gp3 storage.", _between(20, 65536)),
        Key("dbMaxAllocatedStorage", "integer", (50, 200, 500),
            "at least 10% above dbAllocatedStorage, up to 65536 (GiB)",
            "Storage autoscaling ceiling.", _between(22, 65536)),
        Key("dbMultiAz", "boolean", (False, True, True), "true | false",
            "Synchronous standby in a second AZ."),
        Key("dbBackupRetentionDays", "integer", _same(7), "1..35",
            "Days of automated backups (point-in-time recovery).", _between(1, 35)),
        Key("dbBackupWindow", "string", _same("03:00-04:00"),
            "hh:mm-hh:mm (UTC), at least 30 minutes", "Daily backup window.",
            lambda v: checks.daily_window(v) is not None),
        Key("dbMaintenanceWindow", "string", _same("sun:04:00-sun:05:00"),
            "ddd:hh:mm-ddd:hh:mm (UTC), at least 30 minutes, not overlapping dbBackupWindow",
            "Weekly maintenance window.", lambda v: checks.weekly_window(v) is not None),
        Key("dbPerformanceInsights", "boolean", (False, True, True), "true | false",
            "Performance Insights (7 days, free tier)."),
        Key("dbFinalSnapshot", "boolean", (False, True, True), "true | false",
            "Take a final snapshot when the instance is deleted."),
    ),
    *_section(
        "Cache (ElastiCache)",
        Key("cacheEngine", "string", _same("redis"), "redis | valkey",
            "Engine of the replication group (Redis OSS 7.1 or Valkey 8.0).",
            _one_of(*CACHE_ENGINES)),
        Key("cacheNodeType", "string", _same("cache.t3.micro"),
            "an ElastiCache node type such as cache.t3.micro", "Node type.",
            checks.cache_node_type),
        Key("cacheNodes", "integer", (1, 2, 2), "1..6",
            "Nodes (primary + replicas); 2 or more enables automatic failover and Multi-AZ.",
            _between(1, 6)),
        Key("cacheSnapshotRetentionDays", "integer", (0, 7, 7), "0..35",
            "Days daily snapshots are kept (0: none).", _between(0, 35)),
    ),
    *_section(
        "Load balancer",
        Key("albIngressCidrs", "array", _same(["0.0.0.0/0"]), _IPV4_CIDRS,
            "Who may reach the ALB on ports 80 and 443.", checks.ipv4_cidr),
        Key("certificateArn", "string", _same(""),
            "an ACM certificate ARN in aws:region, or empty",
            "ACM certificate for HTTPS; when set, HTTP redirects to HTTPS.",
            _optional(checks.acm_certificate_arn)),
        Key("wafRateLimit", "integer", _same(100), "10..2000000000",
            "WAF rate-based rule: requests per client IP per 5 minutes before blocking.",
            _between(10, 2_000_000_000)),
    ),
    *_section(
        "Cluster (EKS)",
        Key("kubernetesVersion", "string", _same(checks.DEFAULT_KUBERNETES_VERSION),
            " | ".join(checks.KUBERNETES_VERSIONS)
            + " (EKS standard support, with a matching cluster-autoscaler)",
            "Kubernetes version of the control plane and nodes.",
            _one_of(*checks.KUBERNETES_VERSIONS)),
        Key("clusterPublicAccessCidrs", "array", _same(["0.0.0.0/0"]), _IPV4_CIDRS,
            "Who may reach the public Kubernetes API endpoint.", checks.ipv4_cidr),
        Key("adminRoleArns", "array", _same([]),
            "IAM role ARNs such as arn:aws:iam::123456789012:role/Admin",
            "Roles granted cluster-admin through EKS access entries.", checks.iam_role_arn),
        Key("clusterLogRetentionDays", "integer", _same(90),
            "a CloudWatch Logs retention: " + ", ".join(map(str, checks.CLOUDWATCH_RETENTION_DAYS)),
            "Days control-plane logs (api, audit, authenticator) are kept.",
            lambda v: v in checks.CLOUDWATCH_RETENTION_DAYS),
        Key("nodeInstanceTypes", "array", (["t3.medium"], ["t3.large"], ["t3.large"]),
            "x86_64 EC2 instance types such as t3.large (the image is linux/amd64), at least one",
            "Instance types of the managed node group.",
            lambda v: checks.ec2_instance_type(v) and not checks.arm_instance_type(v)),
        Key("nodeCapacityType", "string", _same("ON_DEMAND"), "ON_DEMAND | SPOT",
            "Capacity type of the node group.", _one_of("ON_DEMAND", "SPOT")),
        Key("nodeMinSize", "integer", _same(1), f"0..{NODE_GROUP_MAX_SIZE}",
            "Fewest nodes.", _between(0, NODE_GROUP_MAX_SIZE)),
        Key("nodeDesiredSize", "integer", (2, 2, 3), "nodeMinSize..nodeMaxSize",
            "Nodes at creation (the cluster autoscaler owns it afterwards).",
            _between(0, NODE_GROUP_MAX_SIZE)),
        Key("nodeMaxSize", "integer", (3, 5, 10), f"1..{NODE_GROUP_MAX_SIZE}",
            "Most nodes.", _between(1, NODE_GROUP_MAX_SIZE)),
    ),
    *_section(
        "Registry and image",
        Key("ecrKeepImages", "integer", _same(30), "1..1000",
            "Images the ECR lifecycle policy keeps (the most recent ones).", _between(1, 1000)),
        Key("image", "string", _same(""),
            "an image reference pinned to a tag other than latest or to a digest, such as "
            "ghcr.io/org/agent:1.0, or empty",
            "Prebuilt image of the service (with buildImage false). Empty: built from service/.",
            _optional(lambda v: checks.image_reference(v) and checks.pinned_image(v))),
        Key("buildImage", "boolean", _same(True), "true | false",
            "Build service/ and push it to ECR, tagged by content (needs a Docker/BuildKit "
            "builder where `pulumi up` runs)."),
    ),
    *_section(
        "Workload",
        Key("apiMinReplicas", "integer", (1, 2, 3), "1..100", "HPA minimum of the API.",
            _between(1, 100)),
        Key("apiMaxReplicas", "integer", (3, 6, 20), "1..100", "HPA maximum of the API.",
            _between(1, 100)),
        Key("workerMinReplicas", "integer", (1, 1, 2), "1..100", "HPA minimum of the worker.",
            _between(1, 100)),
        Key("workerMaxReplicas", "integer", (2, 4, 10), "1..100", "HPA maximum of the worker.",
            _between(1, 100)),
        Key("hpaCpuTarget", "integer", _same(70), "1..100 (percent)",
            "HPA target CPU utilisation, percent of the request.", _between(1, 100)),
        Key("hpaMemoryTarget", "integer", _same(80), "1..100 (percent)",
            "HPA target memory utilisation, percent of the request.", _between(1, 100)),
        Key("cpuRequest", "string", _same("500m"), "a Kubernetes CPU quantity such as 500m or 1",
            "CPU request per pod.", _quantity),
        Key("memoryRequest", "string", _same("512Mi"),
            "a Kubernetes memory quantity such as 512Mi or 1Gi", "Memory request per pod.",
            _quantity),
        Key("cpuLimit", "string", _same("1"), "a Kubernetes CPU quantity >= cpuRequest",
            "CPU limit per pod.", _quantity),
        Key("memoryLimit", "string", _same("1Gi"),
            "a Kubernetes memory quantity >= memoryRequest", "Memory limit per pod.", _quantity),
        Key("agentType", "string", _same("conversational"),
            "1 to 64 letters, digits, '.', '_' or '-'", "AGENT_TYPE of the service.",
            checks.label),
        Key("maxConcurrentSessions", "integer", _same(100), "1..100000",
            "MAX_CONCURRENT_SESSIONS per pod.", _between(1, 100_000)),
        Key("modelBackend", "string", _same("local"), "local | openai | bedrock",
            "MODEL_BACKEND of the service.", _one_of("local", "openai", "bedrock")),
        Key("modelUrl", "string", _same(""), "an http(s) URL, or empty",
            "MODEL_URL: OpenAI-compatible base URL (required for openai).",
            _optional(checks.http_url)),
        Key("modelId", "string", _same(""), "a model id without spaces, or empty",
            "MODEL_ID (empty: the backend's default).",
            _optional(lambda v: len(v) <= 256 and not re.search(r"\s", v))),
        Key("logLevel", "string", _same("INFO"), "DEBUG | INFO | WARNING | ERROR | CRITICAL",
            "LOG_LEVEL of the service.",
            _one_of("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    ),
    *_section(
        "Secrets (set with `pulumi config set --secret`)",
        Key("modelApiKey", "secret", _same(None), "any string, set as a secret",
            "MODEL_API_KEY for the openai backend."),
        Key("apiKeys", "secret", _same(None), "comma-separated keys, set as a secret",
            "API_KEYS: the keys clients must present."),
    ),
)  # fmt: skip

KEYS_BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}


@dataclass(frozen=True)
class NetworkConfig:
    """VPC layout."""

    vpc_cidr: str
    az_count: int
    nat_gateways: str  # "single" | "per-az"
    flow_logs: bool
    flow_log_retention_days: int


@dataclass(frozen=True)
class DatabaseConfig:
    """RDS PostgreSQL."""

    engine_version: str
    instance_class: str
    allocated_storage: int
    max_allocated_storage: int
    multi_az: bool
    backup_retention_days: int
    backup_window: str
    maintenance_window: str
    performance_insights: bool
    final_snapshot: bool


@dataclass(frozen=True)
class CacheConfig:
    """ElastiCache replication group."""

    engine: str
    node_type: str
    nodes: int
    snapshot_retention_days: int

    @property
    def engine_version(self) -> str:
        """Engine version pinned for `engine`."""
        return CACHE_ENGINES[self.engine][0]

    @property
    def failover(self) -> bool:
        """Automatic failover and Multi-AZ need a replica."""
        return self.nodes >= 2


@dataclass(frozen=True)
class LoadBalancerConfig:
    """Public entry point."""

    ingress_cidrs: tuple[str, ...]
    certificate_arn: str | None
    waf_rate_limit: int


@dataclass(frozen=True)
class ClusterConfig:
    """EKS control plane and managed node group."""

    kubernetes_version: str
    log_retention_days: int
    public_access_cidrs: tuple[str, ...]
    admin_role_arns: tuple[str, ...]
    node_instance_types: tuple[str, ...]
    node_capacity_type: str
    node_min_size: int
    node_desired_size: int
    node_max_size: int


@dataclass(frozen=True)
class RegistryConfig:
    """ECR repository and where the image comes from."""

    keep_images: int
    image: str | None  # a prebuilt image (build_image false)
    build_image: bool


@dataclass(frozen=True)
class WorkloadConfig:
    """The agent service on Kubernetes."""

    api_min_replicas: int
    api_max_replicas: int
    worker_min_replicas: int
    worker_max_replicas: int
    hpa_cpu_target: int
    hpa_memory_target: int
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    agent_type: str
    max_concurrent_sessions: int
    model_backend: str
    model_url: str | None
    model_id: str | None
    log_level: str


@dataclass(frozen=True)
class SecretsConfig:
    """Secrets, only ever as secret Outputs (None when not set)."""

    model_api_key: pulumi.Output[str] | None
    api_keys: pulumi.Output[str] | None


@dataclass(frozen=True)
class StackConfig:
    """The whole validated configuration of one stack."""

    project: str
    stack: str
    environment: str
    region: str
    deletion_protection: bool
    network: NetworkConfig
    database: DatabaseConfig
    cache: CacheConfig
    load_balancer: LoadBalancerConfig
    cluster: ClusterConfig
    registry: RegistryConfig
    workload: WorkloadConfig
    secrets: SecretsConfig

    @property
    def partition(self) -> str:
        """ARN partition of the region."""
        return checks.partition(self.region)

    @property
    def name_prefix(self) -> str:
        """`<project>-<stack>`: the base of explicit physical names and Name tags."""
        return f"{self.project}-{self.stack}"


def environment_of(stack: str, explicit: str | None = None) -> str:
    """The environment whose defaults apply to `stack`."""
    if explicit:
        return explicit
    if stack in ENVIRONMENTS:
        return stack
    if REVIEW_STACK.match(stack):
        return "dev"
    raise ConfigError(
        f"{NAMESPACE}:environment: not set and stack {stack!r} does not name one; "
        f"allowed: dev | staging | prod (or name the stack dev, staging, prod or pr-<n>)"
    )


def load_config() -> StackConfig:
    """Read and validate the current stack's configuration (raises ConfigError)."""
    return _Reader(pulumi.get_project(), pulumi.get_stack()).read()


def _invalid(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{NAMESPACE}:{key}: {value!r} is not valid; allowed: {allowed}")


class _Reader:
    """Parses the raw strings pulumi hands over into typed values, one key at a time."""

    def __init__(self, project: str, stack: str):
        self.project = project
        self.stack = stack
        self.environment = ""
        self.values: dict[str, Any] = {}
        self.defaulted: set[str] = set()

    def read(self) -> StackConfig:
        """Every key parsed, cross-checked and assembled (secrets last, never echoed)."""
        self._reject_unknown_keys()
        region = self._region()
        env_key = KEYS_BY_NAME["environment"]
        self.environment = environment_of(self.stack, self._parse(env_key, "dev") or None)
        for key in KEYS:
            if key.type == "secret":
                continue
            self.values[key.name] = self._parse(key, self.environment)
        self._check_relations(region)
        return self._build(region)

    # --- raw values -------------------------------------------------------------------------
    @staticmethod
    def _raw(full_name: str) -> str | None:
        value = runtime_config.get_config(full_name)
        return None if value is None else str(value)

    def _reject_unknown_keys(self) -> None:
        present = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
        for full in sorted(present):
            namespace, _, name = full.partition(":")
            name = name.removeprefix("config:")
            if namespace != NAMESPACE or name in KEYS_BY_NAME:
                continue
            close = difflib.get_close_matches(name, list(KEYS_BY_NAME), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"{NAMESPACE}:{name}: unknown key{hint} (keys are listed in Pulumi.yaml)"
            )

    def _region(self) -> str:
        region = (self._raw("aws:region") or "").strip()
        if not checks.region(region):
            raise ConfigError(
                f"aws:region: {region!r} is not valid; allowed: an AWS region such as us-east-1"
            )
        return region

    def _parse(self, key: Key, environment: str) -> Any:
        raw = self._raw(key.full_name)
        text = None if raw is None else raw.strip()
        empty_list = key.type == "array" and key.varies and text == "[]"
        if text is None or text == "" or empty_list:
            self.defaulted.add(key.name)
            return key.default(environment)
        if key.type == "integer":
            if not re.fullmatch(r"[+-]?[0-9]+", text):
                raise _invalid(key.name, raw, f"an integer, {key.allowed}")
            value: Any = int(text)
        elif key.type == "boolean":
            if text.lower() not in ("true", "false"):
                raise _invalid(key.name, raw, "true | false")
            value = text.lower() == "true"
        elif key.type == "array":
            value = self._parse_list(key, text)
        else:
            value = text.upper() if key.name == "logLevel" else text
        if key.type != "array" and key.check is not None and not key.check(value):
            raise _invalid(key.name, text if key.type == "string" else value, key.allowed)
        return value

    def _parse_list(self, key: Key, text: str) -> list[str]:
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise _invalid(key.name, text, f"a JSON list of {key.allowed}") from None
            if not all(isinstance(i, str) for i in items):
                raise _invalid(key.name, text, f"a list of strings: {key.allowed}")
        else:
            items = text.split(",")
        items = [i.strip() for i in items]
        for item in items:
            if key.check is not None and not key.check(item):
                raise _invalid(key.name, item, key.allowed)
        if not items and "at least one" in key.allowed:
            raise _invalid(key.name, text, key.allowed)
        return items

    # --- rules across keys ------------------------------------------------------------------
    def _ordered(self, *names: str) -> None:
        """names[0] <= names[1] <= ... or a ConfigError naming the first key out of order."""
        # Widest pair first, so "min > max" is reported as such rather than against desired.
        pairs = sorted(
            itertools.combinations(names, 2),
            key=lambda p: -abs(names.index(p[1]) - names.index(p[0])),
        )
        for low, high in pairs:
            lo, hi = self.values[low], self.values[high]
            if lo > hi:
                blamed = low if low not in self.defaulted or high in self.defaulted else high
                other = high if blamed == low else low
                relation = "greater than" if blamed == low else "less than"
                raise ConfigError(
                    f"{NAMESPACE}:{blamed}: {self.values[blamed]} is {relation} "
                    f"{other} ({self.values[other]}); allowed: {' <= '.join(names)}"
                )

    def _check_relations(self, region: str) -> None:
        v = self.values
        self._ordered("nodeMinSize", "nodeDesiredSize", "nodeMaxSize")
        self._ordered("apiMinReplicas", "apiMaxReplicas")
        self._ordered("workerMinReplicas", "workerMaxReplicas")
        if v["dbMaxAllocatedStorage"] * 10 < v["dbAllocatedStorage"] * 11:
            raise ConfigError(
                f"{NAMESPACE}:dbMaxAllocatedStorage: {v['dbMaxAllocatedStorage']} is not valid; "
                f"allowed: at least 10% above dbAllocatedStorage ({v['dbAllocatedStorage']}), "
                "up to 65536"
            )
        for request, limit in (("cpuRequest", "cpuLimit"), ("memoryRequest", "memoryLimit")):
            if checks.quantity(v[request]) > checks.quantity(v[limit]):
                raise ConfigError(
                    f"{NAMESPACE}:{request}: {v[request]!r} is greater than {limit} "
                    f"({v[limit]!r}); allowed: {request} <= {limit}"
                )
        backup = checks.daily_window(v["dbBackupWindow"])
        maintenance = checks.weekly_window(v["dbMaintenanceWindow"])
        if backup and maintenance and checks.windows_overlap(backup, maintenance):
            raise ConfigError(
                f"{NAMESPACE}:dbMaintenanceWindow: {v['dbMaintenanceWindow']!r} overlaps "
                f"dbBackupWindow ({v['dbBackupWindow']!r}); allowed: non-overlapping windows"
            )
        if v["certificateArn"] and checks.acm_certificate_region(v["certificateArn"]) != region:
            raise ConfigError(
                f"{NAMESPACE}:certificateArn: {v['certificateArn']!r} is in another region; "
                f"allowed: a certificate in aws:region ({region})"
            )
        if not v["buildImage"] and not v["image"]:
            raise ConfigError(
                f"{NAMESPACE}:image: empty while buildImage is false; "
                "allowed: an image reference such as ghcr.io/org/agent:1.0"
            )
        if v["buildImage"] and v["image"]:
            # Two sources for one image: say which one wins rather than guess.
            raise ConfigError(
                f"{NAMESPACE}:buildImage: true while image is set ({v['image']!r}); "
                "allowed: false to deploy that image, or leave image empty to build service/"
            )
        if v["modelBackend"] == "openai" and not v["modelUrl"]:
            raise ConfigError(
                f"{NAMESPACE}:modelUrl: empty while modelBackend is openai; "
                "allowed: an OpenAI-compatible base URL such as https://api.openai.com/v1"
            )

    # --- secrets ----------------------------------------------------------------------------
    def _secret(self, name: str) -> pulumi.Output[str] | None:
        key = KEYS_BY_NAME[name]
        raw = self._raw(key.full_name)
        if raw is None or raw.strip() == "":
            return None
        if not runtime_config.is_config_secret(key.full_name):
            # Never echo the value: it is a secret that ended up in plain text.
            raise ConfigError(
                f"{key.full_name}: set in plain text; allowed: a secret value "
                f"(pulumi config set --secret {name} ...)"
            )
        return pulumi.Config(NAMESPACE).get_secret(name)

    # --- the typed object -------------------------------------------------------------------
    def _build(self, region: str) -> StackConfig:
        v = self.values
        return StackConfig(
            project=self.project,
            stack=self.stack,
            environment=self.environment,
            region=region,
            deletion_protection=v["deletionProtection"],
            network=NetworkConfig(
                vpc_cidr=v["vpcCidr"],
                az_count=v["azCount"],
                nat_gateways=v["natGateways"],
                flow_logs=v["flowLogs"],
                flow_log_retention_days=v["flowLogRetentionDays"],
            ),
            database=DatabaseConfig(
                engine_version=v["dbEngineVersion"],
                instance_class=v["dbInstanceClass"],
                allocated_storage=v["dbAllocatedStorage"],
                max_allocated_storage=v["dbMaxAllocatedStorage"],
                multi_az=v["dbMultiAz"],
                backup_retention_days=v["dbBackupRetentionDays"],
                backup_window=v["dbBackupWindow"],
                maintenance_window=v["dbMaintenanceWindow"],
                performance_insights=v["dbPerformanceInsights"],
                final_snapshot=v["dbFinalSnapshot"],
            ),
            cache=CacheConfig(
                engine=v["cacheEngine"],
                node_type=v["cacheNodeType"],
                nodes=v["cacheNodes"],
                snapshot_retention_days=v["cacheSnapshotRetentionDays"],
            ),
            load_balancer=LoadBalancerConfig(
                ingress_cidrs=tuple(v["albIngressCidrs"]),
                certificate_arn=v["certificateArn"] or None,
                waf_rate_limit=v["wafRateLimit"],
            ),
            cluster=ClusterConfig(
                kubernetes_version=v["kubernetesVersion"],
                log_retention_days=v["clusterLogRetentionDays"],
                public_access_cidrs=tuple(v["clusterPublicAccessCidrs"]),
                admin_role_arns=tuple(v["adminRoleArns"]),
                node_instance_types=tuple(v["nodeInstanceTypes"]),
                node_capacity_type=v["nodeCapacityType"],
                node_min_size=v["nodeMinSize"],
                node_desired_size=v["nodeDesiredSize"],
                node_max_size=v["nodeMaxSize"],
            ),
            registry=RegistryConfig(
                keep_images=v["ecrKeepImages"],
                image=v["image"] or None,
                build_image=v["buildImage"],
            ),
            workload=WorkloadConfig(
                api_min_replicas=v["apiMinReplicas"],
                api_max_replicas=v["apiMaxReplicas"],
                worker_min_replicas=v["workerMinReplicas"],
                worker_max_replicas=v["workerMaxReplicas"],
                hpa_cpu_target=v["hpaCpuTarget"],
                hpa_memory_target=v["hpaMemoryTarget"],
                cpu_request=v["cpuRequest"],
                memory_request=v["memoryRequest"],
                cpu_limit=v["cpuLimit"],
                memory_limit=v["memoryLimit"],
                agent_type=v["agentType"],
                max_concurrent_sessions=v["maxConcurrentSessions"],
                model_backend=v["modelBackend"],
                model_url=v["modelUrl"] or None,
                model_id=v["modelId"] or None,
                log_level=v["logLevel"],
            ),
            secrets=SecretsConfig(
                model_api_key=self._secret("modelApiKey"),
                api_keys=self._secret("apiKeys"),
            ),
        )


def defaults_table() -> list[dict[str, Any]]:
    """Rows of (key, type, dev, staging, prod, allowed, description) for the docs."""
    return [
        {
            "key": k.name,
            "type": k.type,
            "section": k.section,
            **dict(zip(ENVIRONMENTS, k.defaults, strict=True)),
            "allowed": k.allowed,
            "description": k.description,
        }
        for k in KEYS
    ]
