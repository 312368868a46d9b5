"""Reading resource properties safely, the way the analyzer hands them over.

Properties arrive in wire form behind pulumi-policy's unknown-checking proxy: camelCase names,
numbers as floats, provider inputs JSON-encoded as strings, and during a preview any value that
is not known yet raises `UnknownValueError` when read. `get` turns that into the `UNKNOWN`
marker, so a policy can skip what it cannot judge yet instead of aborting (`pulumi up` runs the
policies again with every value known).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

AWS_PROVIDER = "pulumi:providers:aws"


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""A value that is not known during this preview."""


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """`value[path[0]][path[1]]...`, `default` when absent or null, `UNKNOWN` when not known."""
    current = value
    for key in path:
        try:
            if isinstance(current, Mapping):
                if key not in current:
                    return default
                current = current[key]
            elif isinstance(current, Sequence) and not isinstance(current, str):
                if not isinstance(key, int) or key >= len(current):
                    return default
                current = current[key]
            else:
                return default
        except UnknownValueError:
            return UNKNOWN
    return default if current is None else current


def items(value: Any) -> list[Any]:
    """The elements of a list property (unknown elements as `UNKNOWN`); [] for anything else."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [get(value, i) for i in range(len(value))]


def is_true(value: Any) -> bool:
    """A boolean that is known and true (provider inputs carry booleans as "true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def number(value: Any) -> float | None:
    """A known number, or None."""
    if isinstance(value, bool) or value is UNKNOWN:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def decoded(value: Any) -> Any:
    """Provider inputs are JSON strings on the wire (`defaultTags`); decode them."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def default_tags(provider_props: Any) -> dict[str, Any]:
    """The `defaultTags.tags` of an AWS provider's properties ({} when none)."""
    tags = get(decoded(get(provider_props, "defaultTags")), "tags")
    if not isinstance(tags, Mapping):
        return {}
    return {str(k): get(tags, k) for k in tags}


def urn_types(urn: str) -> list[str]:
    """The type chain of a URN: the ancestors' types, then the resource's own type."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) > 3 else []


def is_rendered_by_chart(urn: str) -> bool:
    """Whether a Kubernetes object comes from a Helm chart or YAML bundle (third-party add-on)."""
    return any(
        t.startswith(("kubernetes:helm.sh/", "kubernetes:yaml")) for t in urn_types(urn)[:-1]
    )


PROD_ENVIRONMENTS = frozenset({"prod"})


def is_prod(environment: str | None) -> bool:
    """Prod rules apply to the `prod` environment.

    The environment is the `environment` tag the program puts into the AWS provider's default
    tags (infra/tags.py); without one, the stack name the CLI gives the analyzer.
    """
    if not environment or environment is UNKNOWN:
        environment = os.environ.get("PULUMI_STACK", "")
    return environment in PROD_ENVIRONMENTS


def stack_environment(resources: Iterable[Any]) -> str | None:
    """The `environment` default tag of the stack's AWS provider(s), if any sets one."""
    for resource in resources:
        provider_props = None
        if resource.resource_type == AWS_PROVIDER:
            provider_props = resource.props
        elif resource.provider is not None and resource.provider.resource_type == AWS_PROVIDER:
            provider_props = resource.provider.props
        environment = default_tags(provider_props).get("environment")
        if isinstance(environment, str) and environment:
            return environment
    return None


def resource_environment(provider: Any) -> str | None:
    """The `environment` default tag of a resource's provider, if set."""
    if provider is None or provider.resource_type != AWS_PROVIDER:
        return None
    environment = default_tags(provider.props).get("environment")
    return environment if isinstance(environment, str) and environment else None


def dependencies(resource: Any, prop: str, *types: str) -> list[Any]:
    """Resources that property `prop` of a stack resource was computed from, of `types`.

    Stack policies link resources through these (the engine passes them; URNs and ids of new
    resources are not known during a preview, names often are not either).
    """
    found = resource.property_dependencies.get(prop, []) if resource.property_dependencies else []
    return [d for d in found if not types or d.resource_type in types]
