"""Run the Pulumi program in-process under mocks and record every resource it registers.

Used by `python -m infra render` and by the tests. Needs no Pulumi CLI, no plugins and no
credentials: `PlatformMocks` answers resource registrations with plausible outputs (ids, ARNs,
endpoints, the pulumi-eks cluster outputs) and the few invokes the program makes; any other invoke
raises `UnmockedInvokeError` so a new data source cannot slip in unanswered.

`RecordingMonitor` does not advertise resource references: with the SDK's stock mock monitor,
passing Resource objects into the pulumi-eks components made runs fail at random ("attached to
a different loop", or a hang; 3 passes in 15 runs), and without the feature every run passes
(inputs then carry ids and URNs instead). It keeps each registration's type, name, parent,
wire-form inputs (secrets still wrapped), the URN the real engine would give it and the URNs its
aliases stand for (docs/offline.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2

from infra.offline.mocks import ACCOUNT_ID, PlatformMocks, UnmockedInvokeError
from infra.offline.networks import EXAMPLE_NETWORK, NetworkLookup
from infra.offline.records import (
    REDACTED,
    Graph,
    RecordedResource,
    is_secret,
    redact,
    unwrap,
    wrap_secret,
)

__all__ = [
    "ACCOUNT_ID",
    "REDACTED",
    "Graph",
    "PlatformMocks",
    "RecordedResource",
    "Recorder",
    "RecordingMonitor",
    "UnmockedInvokeError",
    "engine_urn",
    "is_secret",
    "redact",
    "run",
    "unwrap",
    "wrap_secret",
]


# --- the monitor --------------------------------------------------------------------------------

_REFERENCE_FEATURES = ("outputValues", "resourceReferences")


def _urn_type(urn: str) -> str:
    """The resource type of a URN (the last element of its qualified type)."""
    return urn.split("::")[2].split("$")[-1]


def engine_urn(stack: str, project: str, parent: str | None, typ: str, name: str) -> str:
    """The URN the Pulumi engine gives a resource: its parents' full type chain (the stack
    excluded), then its own type and name. The mock monitor keeps only the last parent type."""
    qualified = typ
    if parent and _urn_type(parent) != "pulumi:pulumi:Stack":
        qualified = f"{parent.split('::')[2]}${typ}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _alias_urns(
    request: Any, stack: str, project: str, parent: str | None, engine_urns: Mapping[str, str]
) -> list[str]:
    """The engine URNs a registration's aliases stand for (`parent`: the engine URN of the
    resource's own parent; `engine_urns` maps the mock URNs alias specs name to engine URNs)."""
    resolved = []
    for alias in request.aliases:
        if alias.urn:
            resolved.append(alias.urn)
            continue
        spec = alias.spec
        named = engine_urns.get(spec.parentUrn, spec.parentUrn) if spec.parentUrn else None
        alias_parent = None if spec.noParent else (named or parent)
        resolved.append(
            engine_urn(
                spec.stack or stack,
                spec.project or project,
                alias_parent,
                spec.type or request.type,
                spec.name or request.name,
            )
        )
    return resolved


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records registrations and does not offer resource references."""

    def __init__(self, mocks: PlatformMocks):
        super().__init__(mocks)
        self.records: list[RecordedResource] = []
        self._engine_urns: dict[str, str] = {}  # mock URN -> engine URN
        self.thread_loops: list[asyncio.AbstractEventLoop] = []

    def _give_thread_a_loop(self) -> None:
        """The SDK calls the monitor from its thread pool, and its mocks create an event loop
        for each such thread and never close it; the loops' self-pipe sockets then leak, and
        their ResourceWarning fails whichever later test the garbage collector interrupts.
        Loops created here are closed by `run()` when the program ends."""
        try:
            asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:  # a pool thread without a loop yet
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.thread_loops.append(loop)

    def Invoke(self, request):  # gRPC method name
        self._give_thread_a_loop()
        return super().Invoke(request)

    def SupportsFeature(self, request):  # gRPC method name
        supported = request.id not in _REFERENCE_FEATURES
        return type("SupportsFeatureResponse", (object,), {"hasSupport": supported})

    def GetDeploymentInfo(self, request):  # gRPC method name
        info = super().GetDeploymentInfo(request)
        features = [
            f
            for f in info.supportedFeatures
            if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def ReadResource(self, request):  # gRPC method name
        self._give_thread_a_loop()
        return super().ReadResource(request)

    def RegisterResource(self, request):  # gRPC method name
        self._give_thread_a_loop()
        response = super().RegisterResource(request)
        stack, project = (
            response.urn.split("::")[0].removeprefix("urn:pulumi:"),
            response.urn.split("::")[1],
        )
        engine_parent = self._engine_urns.get(request.parent) if request.parent else None
        self._engine_urns[response.urn] = engine_urn(
            stack, project, engine_parent, request.type, request.name
        )
        if request.type != "pulumi:pulumi:Stack":
            aliases = _alias_urns(request, stack, project, engine_parent, self._engine_urns)
            parent = request.parent or None
            if parent and _urn_type(parent) == "pulumi:pulumi:Stack":
                parent = None  # children of the stack are top-level
            self.records.append(
                RecordedResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent_urn=parent,
                    custom=bool(request.custom),
                    provider=request.provider or None,
                    raw_inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    id=response.id,
                    outputs=unwrap(self.resources[response.urn].state),
                    dependencies=tuple(request.dependencies),
                    engine_urn=self._engine_urns[response.urn],
                    aliases=tuple(aliases),
                    custom_timeouts={
                        kind: getattr(request.customTimeouts, kind)
                        for kind in ("create", "update", "delete")
                        if getattr(request.customTimeouts, kind)
                    },
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=tuple(request.ignoreChanges),
                )
            )
        return response


# --- running a program --------------------------------------------------------------------------


@dataclass
class Recorder:
    """Holds the monitor of a run, so a caller can inspect it even when the program raised."""

    monitor: RecordingMonitor | None = None

    @property
    def records(self) -> list[RecordedResource]:
        """What was registered so far."""
        return list(self.monitor.records) if self.monitor else []

    @property
    def invokes(self) -> list[pulumi_mocks.MockCallArgs]:
        """Invokes the program made so far."""
        return list(self.monitor.mocks.invokes) if self.monitor else []


def _fresh_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop, current for this thread while the program runs: the SDK's mocks take
    the current one with `asyncio.get_event_loop()`. A run closes its own loop afterwards; a
    loop left open (or created implicitly) would leak its self-pipe sockets, and their
    ResourceWarning surfaces later in whatever code the garbage collector interrupts."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def run(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Iterable[str] = (),
    zones: Sequence[str] | Mapping[str, str] | None = None,
    network: NetworkLookup | None = None,
    recorder: Recorder | None = None,
    logger: logging.Logger | None = None,
) -> Graph:
    """Run `program` under mocks with `config` (full `namespace:key` names, string values).

    Returns the recorded graph and the program's outputs; exceptions from the program (such as
    `ConfigError`) propagate unchanged.
    """
    recorder = recorder if recorder is not None else Recorder()
    loop = _fresh_event_loop()
    try:
        return _run(program, project, stack, config, secret_keys, zones, network, recorder, logger)
    finally:
        for thread_loop in recorder.monitor.thread_loops if recorder.monitor else ():
            thread_loop.close()
        loop.close()
        asyncio.set_event_loop(None)


def _run(
    program: Callable[[], Mapping[str, Any] | None],
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Iterable[str],
    zones: Sequence[str] | Mapping[str, str] | None,
    network: NetworkLookup | None,
    recorder: Recorder,
    logger: logging.Logger | None,
) -> Graph:
    region = config.get("aws:region") or "us-east-1"
    mocks = PlatformMocks(region=region, zones=zones, network=network or EXAMPLE_NETWORK)
    monitor = RecordingMonitor(mocks)
    recorder.monitor = monitor
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger
    )

    resolved: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    @pulumi.runtime.test
    def _program():
        outputs = program() or {}

        async def collect() -> None:
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                resolved[key] = unwrap(await output.future(with_unknowns=True))
                if await output.is_secret():
                    secret_outputs.add(key)

        return pulumi.Output.from_input(asyncio.ensure_future(collect()))

    _program()
    return Graph(
        project=project,
        stack=stack,
        resources=tuple(monitor.records),
        outputs=resolved,
        secret_outputs=frozenset(secret_outputs),
    )
