"""Read Pulumi.yaml and Pulumi.<stack>.yaml the way the CLI would hand them to the program.

Without the CLI, `secure:` values cannot be decrypted: they become a placeholder marked secret.
Project-level values and defaults from Pulumi.yaml apply to keys the stack file leaves unset,
as `pulumi preview` does. Review stacks (`pr-<n>`) may have no stack file: their config is set
by the CI workflow, so they run on the project config alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.config import REVIEW_STACK

SECURE_PLACEHOLDER = "placeholder-for-a-secure-value"


class StackFileError(Exception):
    """A missing or malformed Pulumi.yaml / Pulumi.<stack>.yaml."""


@dataclass(frozen=True)
class StackFiles:
    """The config a stack's program sees: full `namespace:key` names to string values."""

    project: str
    stack: str
    config: dict[str, str]
    secret_keys: frozenset[str]


def _as_config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def _replace_secure(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECURE_PLACEHOLDER
        return {k: _replace_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v) for v in value]
    return value


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top level")
    return data


def read_project(root: Path) -> dict[str, Any]:
    """Pulumi.yaml as a dict."""
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise StackFileError(f"{path}: not found (run from the project root)")
    return _load_yaml(path)


def load(root: Path, stack: str) -> StackFiles:
    """The config of `stack` as the program would receive it from the CLI."""
    project_file = read_project(root)
    project = str(project_file.get("name", ""))
    stack_path = root / f"Pulumi.{stack}.yaml"
    if stack_path.is_file():
        stack_config = _load_yaml(stack_path).get("config") or {}
    elif REVIEW_STACK.match(stack):
        stack_config = {}
    else:
        raise StackFileError(
            f"{stack_path.name}: not found; stacks are dev, staging, prod (with a stack file) "
            "or pr-<n> review stacks"
        )

    config: dict[str, str] = {}
    secret_keys: set[str] = set()
    for raw_key, value in stack_config.items():
        key = raw_key if ":" in raw_key else f"{project}:{raw_key}"
        if _has_secure(value):
            secret_keys.add(key)
            value = _replace_secure(value)
        config[key] = _as_config_string(value)

    for raw_key, declaration in (project_file.get("config") or {}).items():
        key = raw_key if ":" in raw_key else f"{project}:{raw_key}"
        if key in config:
            continue
        if isinstance(declaration, dict):
            if "value" in declaration:
                config[key] = _as_config_string(declaration["value"])
            elif "default" in declaration:
                config[key] = _as_config_string(declaration["default"])
        else:
            config[key] = _as_config_string(declaration)
    return StackFiles(project, stack, config, frozenset(secret_keys))
