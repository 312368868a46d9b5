"""Read the stack's configuration once, before any resource exists, into a `StackConfig`.

`load_config()` takes the raw strings `pulumi` hands the program, fills every unset key with the
default of the stack's environment, and validates the sections (`infra.config.sections`). Any
problem - a value AWS or Kubernetes would reject, a broken rule across keys, an unknown key, a
secret set in plain text - raises `ConfigError` with one line naming the key, the value and what
is allowed, so `pulumi preview` stops before touching anything.
"""

from __future__ import annotations

import difflib
from datetime import UTC, date, datetime
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

from infra.config import checks
from infra.config.rules import broken
from infra.config.sections import (
    CacheConfig,
    ClusterConfig,
    DatabaseConfig,
    LoadBalancerConfig,
    NetworkConfig,
    OperationsConfig,
    RegistryConfig,
    SecretsConfig,
    StackSettings,
    WorkloadConfig,
)
from infra.config.sections.operations import amp_workspace_region
from infra.config.spec import ENVIRONMENTS, NAMESPACE, REVIEW_STACK, ConfigError, Key, Section

# Environments whose load balancer must serve HTTPS (HTTP only redirects) unless opted out.
HTTPS_ENVIRONMENTS = ("staging", "prod")


class StackConfig(BaseModel):
    """The whole validated configuration of one stack."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    project: str
    stack: str
    environment: str  # resolved: dev, staging or prod
    region: str
    today: date  # the day the config was checked against calendars (EKS support)
    settings: StackSettings
    network: NetworkConfig
    database: DatabaseConfig
    cache: CacheConfig
    load_balancer: LoadBalancerConfig
    cluster: ClusterConfig
    registry: RegistryConfig
    workload: WorkloadConfig
    operations: OperationsConfig
    secrets: SecretsConfig

    @model_validator(mode="after")
    def _relations(self, info: ValidationInfo) -> StackConfig:
        arn = self.load_balancer.certificate_arn
        plain_http = self.load_balancer.allow_plain_http
        if not arn and self.environment in HTTPS_ENVIRONMENTS and not plain_http:
            raise broken(
                "certificateArn",
                f"empty in a {self.environment} stack; allowed: an ACM certificate ARN in "
                f"aws:region ({self.region}), such as arn:{self.partition}:acm:{self.region}:"
                "123456789012:certificate/<id> (or allowPlainHttp true to serve plain HTTP)",
            )
        if arn and plain_http:
            raise broken(
                "allowPlainHttp",
                "true while certificateArn is set; allowed: false (HTTP redirects to HTTPS)",
            )
        if arn and checks.acm_certificate_region(arn) != self.region:
            raise broken(
                "certificateArn",
                f"{arn!r} is in another region; allowed: a certificate in aws:region "
                f"({self.region})",
            )
        workspace = self.operations.prometheus_workspace_arn
        if workspace and amp_workspace_region(workspace) != self.region:
            raise broken(
                "prometheusWorkspaceArn",
                f"{workspace!r} is in another region; allowed: a workspace in aws:region "
                f"({self.region}), where the scraper runs",
            )
        return self

    @property
    def deletion_protection(self) -> bool:
        """Deletion protection of the stateful and public resources."""
        return self.settings.deletion_protection

    @property
    def partition(self) -> str:
        """ARN partition of the region."""
        return checks.partition(self.region)

    @property
    def name_prefix(self) -> str:
        """`<project>-<stack>`: the base of explicit physical names and Name tags."""
        return f"{self.project}-{self.stack}"


def utc_today() -> date:
    """Today in UTC (EKS support dates are UTC days)."""
    return datetime.now(UTC).date()


def sections() -> dict[str, type[Section]]:
    """StackConfig attribute -> section model, in declaration order."""
    return {
        name: info.annotation
        for name, info in StackConfig.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, Section)
    }


#: Every key, in the order of the docs.
KEYS: tuple[Key, ...] = tuple(k for attr, s in sections().items() for k in s.keys(attr))
KEYS_BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}


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


def load_config(today: date | None = None) -> StackConfig:
    """Read and validate the current stack's configuration (raises ConfigError).

    `today` (default: the current UTC date) is what the EKS support calendar is checked against.
    """
    return read(pulumi.get_project(), pulumi.get_stack(), today)


def _raw(full_name: str) -> str | None:
    value = runtime_config.get_config(full_name)
    return None if value is None else str(value)


def _reject_unknown_keys() -> None:
    present = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    for full in sorted(present):
        namespace, _, name = full.partition(":")
        name = name.removeprefix("config:")
        if namespace != NAMESPACE or name in KEYS_BY_NAME:
            continue
        close = difflib.get_close_matches(name, list(KEYS_BY_NAME), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{NAMESPACE}:{name}: unknown key{hint} (keys are listed in Pulumi.yaml)")


def _region() -> str:
    region = (_raw("aws:region") or "").strip()
    if not checks.region(region):
        raise ConfigError(
            f"aws:region: {region!r} is not valid; allowed: an AWS region such as us-east-1"
        )
    return region


def _secret(k: Key) -> pulumi.Output[str] | None:
    raw = _raw(k.full_name)
    if raw is None or raw.strip() == "":
        return None
    if not runtime_config.is_config_secret(k.full_name):
        # Never echo the value: it is a secret that ended up in plain text.
        raise ConfigError(
            f"{k.full_name}: set in plain text; allowed: a secret value "
            f"(pulumi config set --secret {k.name} ...)"
        )
    return pulumi.Config(NAMESPACE).get_secret(k.name)


def read(project: str, stack: str, today: date | None = None) -> StackConfig:
    """Every key read, defaulted for the environment, validated and assembled."""
    _reject_unknown_keys()
    region = _region()
    env_key = KEYS_BY_NAME["environment"]
    explicit = _validated_environment(_raw(env_key.full_name))
    environment = environment_of(stack, explicit or None)

    values: dict[str, dict[str, Any]] = {attr: {} for attr in sections()}
    raw_text: dict[str, str] = {}
    defaulted: set[str] = set()
    for k in KEYS:
        section = values[k.path[0]]
        if k.type == "secret":
            section[k.name] = _secret(k)
            continue
        raw = _raw(k.full_name)
        text = None if raw is None else raw.strip()
        empty_list = k.type == "array" and k.varies and text == "[]"
        if text is None or text == "" or empty_list:
            defaulted.add(k.name)
            section[k.name] = k.default(environment)
        else:
            section[k.name] = raw_text[k.name] = raw
    today = today or utc_today()
    document = {"project": project, "stack": stack, "environment": environment, "today": today}
    try:
        return StackConfig.model_validate(
            {**document, "region": region, **values},
            context={"defaulted": defaulted, "today": today},
        )
    except ValidationError as exc:
        raise _one_line(exc, raw_text) from None


def _validated_environment(raw: str | None) -> str:
    try:
        return StackSettings.model_validate({"environment": raw or ""}).environment
    except ValidationError as exc:
        raise _one_line(exc, {"environment": raw or ""}) from None


_FORMATS = {
    "an integer": "an integer, {allowed}",
    "true | false": "true | false",
    "a JSON list of": "a JSON list of {allowed}",
    "a list of strings:": "a list of strings: {allowed}",
}


def _one_line(exc: ValidationError, raw_text: dict[str, str]) -> ConfigError:
    """The first error as "<namespace>:<key>: <value> is not valid; allowed: ..."; a bad
    single value is reported before a broken rule across keys."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] == "key_rule")
    error = errors[0]
    if error["type"] == "key_rule":
        return ConfigError(error["ctx"]["message"])
    name = str(error["loc"][-1])
    k = KEYS_BY_NAME[name]
    raw = raw_text.get(name, "")
    if error["type"] == "key_format":
        allowed = _FORMATS[error["ctx"]["kind"]].format(allowed=k.allowed)
        shown: Any = raw if k.type != "array" else raw.strip()
    elif error["type"] == "key_check":
        allowed = k.allowed
        item = error["ctx"]["item"]
        shown = raw.strip() if k.type == "string" else item
    else:  # key_empty, or a type pydantic refused
        allowed, shown = k.allowed, raw.strip()
    return ConfigError(f"{k.full_name}: {shown!r} is not valid; allowed: {allowed}")
