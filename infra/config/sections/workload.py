"""Configuration keys of the agent service on the cluster, and the secrets it receives.

Each field is one key (see `infra.config.spec.key`); validators are the rules across keys.
"""

from __future__ import annotations

import re

from pydantic import ValidationInfo, model_validator

from infra.config import checks
from infra.config.rules import at_most, broken, ordered
from infra.config.sections.common import quantity
from infra.config.spec import (
    Int,
    Secret,
    Section,
    Text,
    UpperText,
    between,
    key,
    one_of,
    optional,
    rule,
)

_QUANTITY_WORDS = {
    "cpu": "a Kubernetes CPU quantity such as 500m or 1",
    "memory": "a Kubernetes memory quantity such as 512Mi or 1Gi",
}


def _replicas(name: str, dev: int, staging: int, prod: int, what: str) -> int:
    return key(
        name,
        dev=dev,
        staging=staging,
        prod=prod,
        check=between(1, 100),
        help=f"Autoscaling (KEDA ScaledObject) {what}.",
    )


class WorkloadConfig(Section, title="Workload"):
    api_min_replicas: Int = _replicas("apiMinReplicas", 1, 2, 3, "minimum of the API")
    api_max_replicas: Int = _replicas("apiMaxReplicas", 3, 6, 20, "maximum of the API")
    worker_min_replicas: Int = _replicas("workerMinReplicas", 1, 1, 2, "minimum of the worker")
    worker_max_replicas: Int = _replicas("workerMaxReplicas", 2, 4, 10, "maximum of the worker")
    hpa_cpu_target: Int = key(
        "hpaCpuTarget",
        default=70,
        check=between(1, 100, " (percent)"),
        help="Target CPU utilisation of the cpu trigger, percent of the request.",
    )
    hpa_memory_target: Int = key(
        "hpaMemoryTarget",
        default=80,
        check=between(1, 100, " (percent)"),
        help="Target memory utilisation of the memory trigger, percent of the request.",
    )
    cpu_request: Text = key(
        "cpuRequest",
        default="500m",
        check=quantity(_QUANTITY_WORDS["cpu"], "500x"),
        help="CPU request per pod.",
    )
    memory_request: Text = key(
        "memoryRequest",
        default="512Mi",
        check=quantity(_QUANTITY_WORDS["memory"], "512mb"),
        help="Memory request per pod.",
    )
    cpu_limit: Text = key(
        "cpuLimit",
        default="1",
        check=rule(
            lambda v: 0 < (checks.quantity(v) or 0) <= 1,
            "a Kubernetes CPU quantity >= cpuRequest and at most 1 (one service process per pod "
            "uses one CPU; scale with replicas)",
            "0",
            "2",
            "1500m",
        ),
        help="CPU limit per pod, at most 1: a pod runs one service process, which uses one CPU "
        "at most; the unit of scale is the pod (apiMaxReplicas).",
    )
    memory_limit: Text = key(
        "memoryLimit",
        default="1Gi",
        check=quantity("a Kubernetes memory quantity >= memoryRequest", "1 Gi"),
        help="Memory limit per pod.",
    )
    agent_type: Text = key(
        "agentType",
        default="conversational",
        check=rule(checks.label, "1 to 64 letters, digits, '.', '_' or '-'", "has space"),
        help="AGENT_TYPE of the service.",
    )
    max_concurrent_sessions: Int = key(
        "maxConcurrentSessions",
        default=100,
        check=between(1, 100_000),
        help="MAX_CONCURRENT_SESSIONS per pod.",
    )
    worker_concurrency: Int = key(
        "workerConcurrency",
        default=8,
        check=between(1, 1000),
        help="WORKER_CONCURRENCY: tasks one worker runs at once; also the worker's KEDA target "
        "(queued + running tasks per worker).",
    )
    model_backend: Text = key(
        "modelBackend",
        default="local",
        check=one_of("local", "openai", "bedrock"),
        help="MODEL_BACKEND of the service.",
    )
    model_url: Text = key(
        "modelUrl",
        default="",
        check=optional(rule(checks.http_url, "an http(s) URL", "ftp://x")),
        help="MODEL_URL: OpenAI-compatible base URL (required for openai).",
    )
    model_id: Text = key(
        "modelId",
        default="",
        check=optional(
            rule(
                lambda v: len(v) <= 256 and not re.search(r"\s", v),
                "a model id without spaces",
                "gpt 4",
            )
        ),
        help="MODEL_ID (empty: the backend's default). Required with modelBackend bedrock: a "
        "model id or a cross-Region inference profile id, the only one the pods may invoke.",
    )
    log_level: UpperText = key(
        "logLevel",
        default="INFO",
        check=one_of("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="LOG_LEVEL of the service.",
    )

    @model_validator(mode="after")
    def _relations(self, info: ValidationInfo) -> WorkloadConfig:
        ordered(self, info, "api_min_replicas", "api_max_replicas")
        ordered(self, info, "worker_min_replicas", "worker_max_replicas")
        at_most(self, "cpu_request", "cpu_limit", checks.quantity)
        at_most(self, "memory_request", "memory_limit", checks.quantity)
        if self.model_backend == "openai" and not self.model_url:
            raise broken(
                "modelUrl",
                "empty while modelBackend is openai; "
                "allowed: an OpenAI-compatible base URL such as https://api.openai.com/v1",
            )
        if self.model_backend == "bedrock":
            _check_bedrock_model(self.model_id)
        return self


_BEDROCK_MODELS = (
    "a Bedrock model id such as anthropic.claude-3-haiku-20240307-v1:0, or a cross-Region "
    "inference profile id such as us.anthropic.claude-3-5-haiku-20241022-v1:0 (the pods may "
    "invoke that model only)"
)


def _check_bedrock_model(model_id: str) -> None:
    """The pod's IAM policy names the model: it must be given, as an id (not an ARN)."""
    if not model_id:
        raise broken("modelId", f"empty while modelBackend is bedrock; allowed: {_BEDROCK_MODELS}")
    if model_id.startswith("arn:"):
        raise broken(
            "modelId",
            f"{model_id!r} is an ARN (application inference profiles are not supported); "
            f"allowed: {_BEDROCK_MODELS}",
        )
    if not re.fullmatch(r"[a-z0-9-]+\.[A-Za-z0-9][A-Za-z0-9._:-]*", model_id):
        raise broken(
            "modelId", f"{model_id!r} is not a Bedrock model id; allowed: {_BEDROCK_MODELS}"
        )


class SecretsConfig(Section, title="Secrets (set with `pulumi config set --secret`)"):
    """Secrets, only ever as secret Outputs (None when not set)."""

    model_api_key: Secret = key(
        "modelApiKey",
        default=None,
        allowed="any string, set as a secret",
        help="MODEL_API_KEY for the openai backend.",
    )
    api_keys: Secret = key(
        "apiKeys",
        default=None,
        allowed="comma-separated keys, set as a secret",
        help="API_KEYS: the keys clients must present.",
    )
