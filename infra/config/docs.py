"""Documentation of the config keys, generated from the section models (infra/config/sections.py).

`python -m infra config-docs` prints the `config:` block of Pulumi.yaml and the README table;
tests check both files still match, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from infra.config.loader import KEYS
from infra.config.spec import ENVIRONMENTS, Key

# Project-level values that are not keys of the program.
PROJECT_VALUES: dict[str, Any] = {
    # Region of stacks whose stack file does not set one (pr-<n> review stacks, from CI).
    "aws:region": {"value": "us-east-1"},
    # Every AWS and Kubernetes resource must name its provider explicitly.
    "pulumi:disable-default-providers": {"value": ["aws", "kubernetes"]},
}


def show(value: Any) -> str:
    """A default as the docs print it."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)


def _defaults_text(key: Key) -> str:
    if key.type == "secret":
        return "unset"
    if key.varies:
        return ", ".join(
            f"{env} {show(d)}" for env, d in zip(ENVIRONMENTS, key.defaults, strict=True)
        )
    return show(key.defaults[0])


def _declaration(key: Key) -> dict[str, Any]:
    description = (
        f"{key.help} Allowed: {key.allowed}. Default: {_defaults_text(key)}."
        if key.type != "secret"
        else f"{key.help} Secret: {key.allowed}. Default: unset."
    )
    if key.type == "array":
        return {
            "type": "array",
            "items": {"type": "string"},
            "description": description,
            "default": [] if key.varies else list(key.defaults[0]),
        }
    if key.type == "secret" or key.varies:
        # Empty means "the environment's default" (a typed key without a default is required).
        return {"type": "string", "description": description, "default": ""}
    return {"type": key.type, "description": description, "default": key.defaults[0]}


def pulumi_yaml_config() -> dict[str, Any]:
    """The `config:` block of Pulumi.yaml."""
    block: dict[str, Any] = dict(PROJECT_VALUES)
    block.update({key.name: _declaration(key) for key in KEYS})
    return block


def markdown_table() -> str:
    """The README's configuration reference."""
    lines = [
        "| Key | Type | dev | staging | prod | Allowed | What it does |",
        "|---|---|---|---|---|---|---|",
    ]
    section = None
    for key in KEYS:
        if key.section != section:
            section = key.section
            lines.append(f"| **{section}** | | | | | | |")
        cells = [show(d) if key.type != "secret" else "unset" for d in key.defaults]
        row = [f"`{key.name}`", key.type, *cells, key.allowed, key.help]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def write(root: Path) -> list[Path]:
    """Rewrite Pulumi.yaml's `config:` block and README's configuration table in place."""
    project = root / "Pulumi.yaml"
    head = project.read_text().split("\nconfig:\n", 1)[0]
    block = yaml.safe_dump({"config": pulumi_yaml_config()}, sort_keys=False, width=100)
    project.write_text(f"{head}\n{block}")

    readme = root / "README.md"
    lines = readme.read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| Key | Type | dev "))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[start:end] = markdown_table().split("\n")
    readme.write_text("\n".join(lines))
    return [project, readme]
