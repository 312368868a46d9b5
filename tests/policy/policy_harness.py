"""Run the policy pack's policies on recorded graphs, the way the Pulumi analyzer would.

    graph = program_graph("prod")                     # the program under mocks, + dependencies
    broken = graph.with_inputs("database-instance", storageEncrypted=False)
    violations(RDS_STORAGE_ENCRYPTED, broken)          # [Violation(message, urn)]

Resource policies see every registration (components included: under mocks the pulumi-eks
components' inputs are all there is) with its inputs and its AWS provider; stack policies see
every resource with its state (inputs plus the mock's outputs), parent and property
dependencies. Properties are prepared as the analyzer prepares them:
`unknown_checking_proxy(deserialize_properties(...))`.

`infra.offline.mocking` records no property dependencies, so `program_graph` runs the program with a
monitor that also keeps each registration's `propertyDependencies` (what the engine hands to
stack policies).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from unittest.mock import patch

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from infra.offline import mocking
from infra.offline.mocking import RecordedResource
from tests.infra.pulumi_harness import run_program

PROJECT = "agent-platform"
AWS_PROVIDER = "pulumi:providers:aws"
_REMOVE = object()


@dataclass(frozen=True)
class Violation:
    """One reported violation: the message and the URN it is attached to."""

    message: str
    urn: str


@dataclass(frozen=True)
class PolicyGraph:
    """Recorded resources plus their property dependencies (URN -> property -> URNs)."""

    stack: str
    resources: tuple[RecordedResource, ...]
    dependencies: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)

    def named(self, name: str) -> RecordedResource:
        """The one resource with this logical name."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name!r}, found {len(found)}")
        return found[0]

    def with_inputs(self, name: str, **changes: Any) -> PolicyGraph:
        """A copy where resource `name` has these inputs changed (`None` removes one).

        A changed input no longer depends on the resources it was computed from.
        """
        target = self.named(name)
        inputs = {k: v for k, v in {**target.raw_inputs, **changes}.items() if v is not None}
        outputs = {k: v for k, v in target.outputs.items() if k not in changes}
        changed = replace(target, raw_inputs=inputs, outputs=outputs)
        deps = {**self.dependencies}
        deps[target.urn] = {
            prop: urns for prop, urns in deps.get(target.urn, {}).items() if prop not in changes
        }
        return replace(
            self,
            resources=tuple(changed if r is target else r for r in self.resources),
            dependencies=deps,
        )

    def without(self, name: str) -> PolicyGraph:
        """A copy without resource `name`."""
        target = self.named(name)
        return replace(self, resources=tuple(r for r in self.resources if r is not target))

    def plus(self, *resources: RecordedResource, dependencies=None) -> PolicyGraph:
        """A copy with more resources (and their property dependencies)."""
        return replace(
            self,
            resources=(*self.resources, *resources),
            dependencies={**self.dependencies, **(dependencies or {})},
        )


_GRAPHS: dict[tuple[str, str], PolicyGraph] = {}


def program_graph(stack: str, config_overrides: Mapping[str, Any] | None = None) -> PolicyGraph:
    """The program's graph for `stack` under mocks, with property dependencies (cached)."""
    key = (stack, json.dumps(config_overrides or {}, sort_keys=True))
    if key not in _GRAPHS:
        dependencies: dict[str, dict[str, list[str]]] = {}

        class DependencyMonitor(mocking.RecordingMonitor):
            def RegisterResource(self, request):  # gRPC method name
                response = super().RegisterResource(request)
                dependencies[response.urn] = {
                    prop: list(deps.urns) for prop, deps in request.propertyDependencies.items()
                }
                return response

        with patch.object(mocking, "RecordingMonitor", DependencyMonitor):
            graph = run_program(stack, config_overrides)
        _GRAPHS[key] = PolicyGraph(stack, graph.resources, dependencies)
    return _GRAPHS[key]


# --- hand-built records -------------------------------------------------------------------------


def urn(stack: str, typ: str, name: str, parent_type: str | None = None) -> str:
    """A URN as the engine spells it."""
    qualified = f"{parent_type}${typ}" if parent_type else typ
    return f"urn:pulumi:{stack}::{PROJECT}::{qualified}::{name}"


def aws_provider(stack: str, tags: Mapping[str, str] | None) -> RecordedResource:
    """An explicit AWS provider record; `tags` become its defaultTags (None: no defaultTags)."""
    inputs = {"region": "us-east-1"}
    if tags is not None:
        inputs["defaultTags"] = json.dumps({"tags": dict(tags)})
    return resource(stack, AWS_PROVIDER, "aws", inputs, provider=None, custom=True)


def default_tags(stack: str, environment: str) -> dict[str, str]:
    """The tags infra/tags.py puts on a stack's provider."""
    return {"project": PROJECT, "stack": stack, "environment": environment, "managed-by": "pulumi"}


def resource(
    stack: str,
    typ: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    provider: RecordedResource | None = None,
    parent_type: str | None = None,
    custom: bool = True,
) -> RecordedResource:
    """A registration record built by hand (inputs in wire form: camelCase)."""
    return RecordedResource(
        type=typ,
        name=name,
        urn=urn(stack, typ, name, parent_type),
        parent_urn=None,
        custom=custom,
        provider=f"{provider.urn}::{provider.id}" if provider else None,
        raw_inputs=dict(inputs),
        id=f"{name}-id" if custom else "",
    )


# --- the analyzer's view ------------------------------------------------------------------------


def _props(values: Mapping[str, Any]):
    return unknown_checking_proxy(deserialize_properties(dict(values)))


def _options(record: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], record.parent_urn
    )


def _provider(graph: PolicyGraph, record: RecordedResource) -> PolicyProviderResource | None:
    if not record.provider:
        return None
    provider_urn = record.provider.rsplit("::", 1)[0]
    found = next((r for r in graph.resources if r.urn == provider_urn), None)
    if found is None:
        return None
    return PolicyProviderResource(found.type, _props(found.raw_inputs), found.urn, found.name)


def resource_args(graph: PolicyGraph) -> list[ResourceValidationArgs]:
    """What `Analyze` gets for each registration: inputs, options, provider."""
    return [
        ResourceValidationArgs(
            r.type, _props(r.raw_inputs), r.urn, r.name, _options(r), _provider(graph, r)
        )
        for r in graph.resources
    ]


def stack_args(graph: PolicyGraph) -> StackValidationArgs:
    """What `AnalyzeStack` gets: every resource's state, parent and dependencies."""
    by_urn: dict[str, PolicyResource] = {}
    for r in graph.resources:
        state = {**r.outputs, **r.raw_inputs}  # outputs, with the inputs' secret markers kept
        by_urn[r.urn] = PolicyResource(
            r.type, _props(state), r.urn, r.name, _options(r), _provider(graph, r), None, [], {}
        )
    for r in graph.resources:
        policy_resource = by_urn[r.urn]
        policy_resource.parent = by_urn.get(r.parent_urn or "")
        for prop, urns in graph.dependencies.get(r.urn, {}).items():
            linked = [by_urn[u] for u in urns if u in by_urn]
            policy_resource.property_dependencies[prop] = linked
            policy_resource.dependencies.extend(
                d for d in linked if d not in policy_resource.dependencies
            )
    return StackValidationArgs(list(by_urn.values()))


def _settle(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(result)


def violations(policy: Policy, graph: PolicyGraph) -> list[Violation]:
    """Every violation `policy` reports on `graph`."""
    found: list[Violation] = []
    if isinstance(policy, ResourceValidationPolicy):
        for args in resource_args(graph):

            def report(message: str, _urn: str | None = None, at: str = args.urn) -> None:
                found.append(Violation(message, at))

            _settle(policy.validate(args, report))
    else:

        def report_stack(message: str, at: str | None = None) -> None:
            found.append(Violation(message, at or ""))

        _settle(policy.validate(stack_args(graph), report_stack))
    return found
