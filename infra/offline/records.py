"""What a run under mocks registered: resources with their wire-form inputs, and the graph.

Inputs arrive as the engine would receive them: camelCase names, numbers as floats, secrets
wrapped. `RecordedResource.get` reads plain values by dotted path; `redact` replaces secrets by
"[secret]" for anything written to disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import rpc

REDACTED = "[secret]"
_MISSING = object()


def is_secret(value: Any) -> bool:
    """Whether a wire-form value is a wrapped secret."""
    return rpc.is_rpc_secret(value)


def wrap_secret(value: Any) -> Any:
    """`value` in the wire form of a secret (for building records by hand)."""
    return rpc.wrap_rpc_secret(value)


def _number(value: float) -> int | float:
    # The wire format carries every number as a double; integral ones read better as ints.
    return int(value) if value.is_integer() else value


def unwrap(value: Any) -> Any:
    """The plain value of a wire-form value (secrets unwrapped, recursively)."""
    if isinstance(value, float):
        return _number(value)
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, Mapping):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """A wire-form value with every secret replaced by `REDACTED` ("[secret]")."""
    if isinstance(value, float):
        return _number(value)
    if is_secret(value):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


@dataclass(frozen=True)
class RecordedResource:
    """One registration: what the provider (or component) was asked to create."""

    type: str
    name: str
    urn: str
    parent_urn: str | None
    custom: bool
    provider: str | None
    raw_inputs: Mapping[str, Any]
    id: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()  # URNs: explicit depends_on and inputs' resources
    engine_urn: str = ""  # the URN the real engine gives it (full parent type chain)
    aliases: tuple[str, ...] = ()  # engine URNs it answered to before (`aliases=`)
    custom_timeouts: Mapping[str, str] = field(default_factory=dict)  # create/update/delete
    retain_on_delete: bool = False  # `retain_on_delete=`: Pulumi forgets it, the object stays
    ignore_changes: tuple[str, ...] = ()  # `ignore_changes=`: inputs Pulumi never updates

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs with secrets unwrapped (camelCase names, numbers as floats)."""
        return unwrap(self.raw_inputs)

    def _walk(self, path: str) -> tuple[Any, bool]:
        value: Any = self.raw_inputs
        secret = False
        for part in path.split("."):
            if is_secret(value):
                secret, value = True, value["value"]
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return _MISSING, secret
        if is_secret(value):
            secret, value = True, value["value"]
        return value, secret

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """The plain value at a dotted path (`healthCheck.path`, `subnetIds.0`)."""
        value, _ = self._walk(path)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(f"{self.type} {self.name!r} has no input {path!r}")
            return default
        return unwrap(value)

    def is_secret(self, path: str) -> bool:
        """Whether the value at `path`, or a value containing it, is marked secret."""
        value, secret = self._walk(path)
        if value is _MISSING:
            raise KeyError(f"{self.type} {self.name!r} has no input {path!r}")
        return secret


@dataclass(frozen=True)
class Graph:
    """Everything one run registered, plus the stack outputs."""

    project: str
    stack: str
    resources: tuple[RecordedResource, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    secret_outputs: frozenset[str] = frozenset()

    def of_type(self, token: str) -> list[RecordedResource]:
        """Every resource of a type token, e.g. `aws:ec2/subnet:Subnet`."""
        return [r for r in self.resources if r.type == token]

    def one(self, token: str, name_contains: str | None = None) -> RecordedResource:
        """The single resource of `token` (whose name contains `name_contains`)."""
        found = [r for r in self.of_type(token) if name_contains is None or name_contains in r.name]
        if len(found) != 1:
            names = [r.name for r in found]
            raise LookupError(f"expected one {token} matching {name_contains!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource | None:
        """The resource with this URN, if recorded."""
        return next((r for r in self.resources if r.urn == urn), None)

    def parent_of(self, resource: RecordedResource) -> RecordedResource | None:
        """The resource's parent (None for children of the stack)."""
        return self.by_urn(resource.parent_urn) if resource.parent_urn else None

    def children(self, resource: RecordedResource) -> list[RecordedResource]:
        """Direct children of a (component) resource."""
        return [r for r in self.resources if r.parent_urn == resource.urn]

    def depends_on(self, resource: RecordedResource, other: RecordedResource) -> bool:
        """Whether `resource` waits for `other`, directly or through its dependencies.

        Depending on a component means waiting for all of its children (Pulumi expands it).
        """
        targets = {other.urn} | {r.urn for r in self.descendants(other)}
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in targets:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            found = self.by_urn(urn)
            if found is not None:
                todo.extend(found.dependencies)
                todo.extend(r.urn for r in self.descendants(found))
        return False

    def descendants(self, resource: RecordedResource) -> list[RecordedResource]:
        """Children, their children, and so on."""
        found = self.children(resource)
        return found + [d for child in found for d in self.descendants(child)]

    def to_document(self) -> dict[str, Any]:
        """The resources.json document (docs/offline.md): sorted, secrets as "[secret]"."""
        resources = sorted(self.resources, key=lambda r: (r.type, r.name))
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "parent": parent.name if (parent := self.parent_of(r)) else None,
                    "inputs": _sorted(redact(r.raw_inputs)),
                }
                for r in resources
            ],
            "outputs": _sorted(
                {k: REDACTED if k in self.secret_outputs else v for k, v in self.outputs.items()}
            ),
        }


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value
