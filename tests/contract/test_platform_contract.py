"""The platform's render against the service's contract, for every stack.

The service says what it accepts (its settings class), what each process requires, its probe
paths, commands, port and user (`agent_service.contract`); the platform renders ConfigMap,
Secret, Deployments and the Job. A variable the service does not accept would be dropped
silently (the settings ignore unknown variables), so every rendered variable must be one it
accepts, every requirement of each process must be met by what its container receives, and
every command must start.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import pytest
from agent_service import contract as service_contract

from infra import contract as platform_contract
from infra.offline.mocking import Graph
from tests.infra.pulumi_harness import STACKS, graph_of

CONTRACT = service_contract.build()
ACCEPTED = set(CONTRACT["environment"]["accepted"])
SECRET = set(CONTRACT["environment"]["secret"])


def _config_map(graph: Graph) -> dict[str, str]:
    return graph.one("kubernetes:core/v1:ConfigMap").get("data")


def _secret(graph: Graph) -> dict[str, str]:
    return graph.one("kubernetes:core/v1:Secret", "workload-secrets").get("stringData")


def _container(graph: Graph, token: str, name: str) -> Mapping:
    resource = next(r for r in graph.of_type(token) if r.name == name)
    (container,) = resource.get("spec.template.spec.containers")
    return container


PROCESSES = {  # process -> (type, resource name, receives the Secret)
    "api": ("kubernetes:apps/v1:Deployment", "workload-api", True),
    "worker": ("kubernetes:apps/v1:Deployment", "workload-worker", True),
    "migrate": ("kubernetes:batch/v1:Job", "workload-migrate", False),
}


def _environment(graph: Graph, process: str) -> set[str]:
    token, name, with_secret = PROCESSES[process]
    container = _container(graph, token, name)
    sources = {next(iter(source)) for source in container["envFrom"]}
    assert ("secretRef" in sources) is with_secret, (process, sources)
    names = set(_config_map(graph)) | ({*_secret(graph)} if with_secret else set())
    return names | {e["name"] for e in container.get("env", [])}


def test_the_platform_reads_the_contract_the_service_writes():
    assert platform_contract.load() == CONTRACT


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_variable_is_one_the_service_accepts(stack):
    graph = graph_of(stack)
    rendered = set(_config_map(graph)) | set(_secret(graph))
    assert rendered - ACCEPTED == set()


@pytest.mark.parametrize("stack", STACKS)
def test_secret_variables_travel_in_the_secret_only(stack):
    graph = graph_of(stack)
    assert set(_config_map(graph)) & SECRET == set()
    assert set(_secret(graph)) <= SECRET


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_every_requirement_of_each_process_is_met(stack, process):
    environment = _environment(graph_of(stack), process)
    for requirement in CONTRACT["requires"][process]:
        assert any(set(group) <= environment for group in requirement), (process, requirement)


@pytest.mark.parametrize("stack", STACKS)
def test_port_user_probes_and_commands_are_the_service_s(stack):
    graph = graph_of(stack)
    api = _container(graph, *PROCESSES["api"][:2])
    worker = _container(graph, *PROCESSES["worker"][:2])
    migrate = _container(graph, *PROCESSES["migrate"][:2])
    assert api["ports"][0]["containerPort"] == CONTRACT["port"]
    assert api["livenessProbe"]["httpGet"]["path"] == CONTRACT["probes"]["liveness_path"]
    assert api["readinessProbe"]["httpGet"]["path"] == CONTRACT["probes"]["readiness_path"]
    for process, container in (("api", api), ("worker", worker), ("migrate", migrate)):
        assert container["command"] == CONTRACT["commands"][process]
        assert container["securityContext"]["runAsUser"] == CONTRACT["run_as_user"]
        assert container["securityContext"]["runAsGroup"] == CONTRACT["run_as_group"]
    assert worker["livenessProbe"]["exec"]["command"] == CONTRACT["commands"]["worker_liveness"]
    assert worker["readinessProbe"]["exec"]["command"] == CONTRACT["commands"]["worker_readiness"]
    for container in (api, worker):
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == CONTRACT["metrics_port"]
    assert _config_map(graph)["METRICS_PORT"] == str(CONTRACT["metrics_port"])
    target_group = graph.one("aws:lb/targetGroup:TargetGroup")
    assert target_group.get("port") == CONTRACT["port"]
    assert target_group.get("healthCheck.path") == CONTRACT["probes"]["readiness_path"]


def _rendered_commands() -> dict[str, list[str]]:
    graph = graph_of("prod")
    worker = _container(graph, *PROCESSES["worker"][:2])
    commands = {p: _container(graph, *PROCESSES[p][:2])["command"] for p in PROCESSES}
    commands["worker_liveness"] = worker["livenessProbe"]["exec"]["command"]
    commands["worker_readiness"] = worker["readinessProbe"]["exec"]["command"]
    return commands


@pytest.mark.parametrize(
    "name", ["api", "worker", "migrate", "worker_liveness", "worker_readiness"]
)
def test_every_rendered_command_exists_in_the_service(name):
    argv = _rendered_commands()[name]
    assert argv[:2] == ["python", "-m"]
    done = subprocess.run(
        [sys.executable, *argv[1:], "--help"], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
