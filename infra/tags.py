"""Tag conventions: what every AWS resource carries (through the provider's default_tags)."""

from __future__ import annotations

MANAGED_BY = "pulumi"


def default_tags(project: str, stack: str, environment: str) -> dict[str, str]:
    """Tags the explicit AWS provider puts on every resource it creates."""
    return {
        "project": project,
        "stack": stack,
        "environment": environment,
        "managed-by": MANAGED_BY,
    }


def name_tag(*parts: str) -> dict[str, str]:
    """The console's `Name` column, for resources that have no name of their own."""
    return {"Name": "-".join(p for p in parts if p)}
