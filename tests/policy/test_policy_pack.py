"""The pack as the Pulumi CLI meets it: PulumiPolicy.yaml, __main__.py, the gRPC analyzer."""

from __future__ import annotations

import re
import runpy
import select
import subprocess
import sys
from pathlib import Path

import grpc
import pulumi_policy
import pytest
import yaml
from agent_platform_policies import ALL_POLICIES, PACK_NAME
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.policy.policy_harness import program_graph

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "policy"
START_TIMEOUT = 30  # seconds for the analyzer to print its port
LEVELS = {
    pulumi_policy.EnforcementLevel.MANDATORY: analyzer_pb2.MANDATORY,
    pulumi_policy.EnforcementLevel.ADVISORY: analyzer_pb2.ADVISORY,
}


def test_main_builds_the_pack_with_every_policy(monkeypatch):
    built = {}

    class RecordingPack:  # the real PolicyPack starts a server and blocks
        def __init__(self, **kwargs):
            built.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", RecordingPack)
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == PACK_NAME == "agent-platform"
    assert built["policies"] is ALL_POLICIES
    assert built["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY


def test_policy_names_are_unique_and_kebab_case():
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names)) == 34
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)


def test_pack_project_files():
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    pins = (PACK_DIR / "requirements.txt").read_text().split()
    dev_pins = (ROOT / "requirements-dev.txt").read_text().split()
    assert f"pulumi-policy=={pulumi_policy.version.VERSION}" in pins
    assert {p for p in pins if p.startswith("pulumi-policy==")} <= set(dev_pins)


@pytest.fixture(scope="module")
def analyzer():
    """The pack served by `python policy/__main__.py`, as the CLI starts it."""
    with subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        try:
            ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
            assert ready, "the policy pack printed no port"
            port = int(process.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
                yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _struct(values) -> struct_pb2.Struct:
    return json_format.ParseDict(dict(values), struct_pb2.Struct())


def test_the_analyzer_lists_every_policy_with_its_level(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == PACK_NAME
    served = {p.name: p.enforcementLevel for p in info.policies}
    assert served == {p.name: LEVELS[p.enforcement_level] for p in ALL_POLICIES}


def test_the_analyzer_judges_a_resource_over_the_wire(analyzer):
    graph = program_graph("dev").with_inputs("database-instance", storageEncrypted=False)
    db, provider = graph.named("database-instance"), graph.named("aws")
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type=db.type,
            name=db.name,
            urn=db.urn,
            properties=_struct(db.raw_inputs),
            provider=analyzer_pb2.AnalyzerProviderResource(
                type=provider.type,
                name=provider.name,
                urn=provider.urn,
                properties=_struct(provider.raw_inputs),  # defaultTags as a JSON string
            ),
        ),
        timeout=10,
    )
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("rds-storage-encrypted", analyzer_pb2.MANDATORY)
    ]
    assert "set storageEncrypted=true" in response.diagnostics[0].message


def test_the_analyzer_follows_property_dependencies_over_the_wire(analyzer):
    graph = program_graph("dev").with_inputs("database-instance", publiclyAccessible=True)
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=r.type,
            name=r.name,
            urn=r.urn,
            properties=_struct({**r.outputs, **r.raw_inputs}),
            parent=r.parent_urn or "",
            propertyDependencies={
                prop: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                for prop, urns in graph.dependencies.get(r.urn, {}).items()
            },
        )
        for r in graph.resources
    ]
    response = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=30
    )
    exposed = [d for d in response.diagnostics if d.policyName == "no-public-data-stores"]
    assert [d.urn for d in exposed] == [graph.named("database-instance").urn]
