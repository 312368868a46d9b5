"""ECR and the image: immutable, scanned, encrypted, pruned; built by content, run by digest."""

from __future__ import annotations

import json
import re

import pytest

from infra.components.registry import content_tag
from tests.infra.pulumi_harness import ROOT, graph_of, run_program

REPOSITORY = "aws:ecr/repository:Repository"
IMAGE = "docker-build:index:Image"
PREBUILT = "ghcr.io/example/agent-service:1.4.2"


def deployments(graph):
    return graph.of_type("kubernetes:apps/v1:Deployment")


def test_the_repository_is_immutable_scanned_and_kms_encrypted(graph):
    repository = graph.one(REPOSITORY)
    assert repository.get("name") == f"agent-platform-{graph.stack}-agent-service"
    assert repository.get("imageTagMutability") == "IMMUTABLE"
    assert repository.get("imageScanningConfiguration") == {"scanOnPush": True}
    assert repository.get("encryptionConfigurations") == [{"encryptionType": "KMS"}]


@pytest.mark.parametrize(("stack", "force"), [("dev", True), ("staging", False), ("prod", False)])
def test_only_unprotected_stacks_delete_a_repository_that_still_has_images(stack, force):
    assert graph_of(stack).one(REPOSITORY).get("forceDelete") is force


def test_the_lifecycle_policy_keeps_the_last_n_images():
    for keep, graph in ((30, graph_of("dev")), (5, run_program("dev", {"ecrKeepImages": 5}))):
        policy = graph.one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
        assert policy.get("repository") == graph.one(REPOSITORY).outputs["name"]
        (rule,) = json.loads(policy.get("policy"))["rules"]
        assert rule["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": keep,
        }
        assert rule["action"] == {"type": "expire"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_service_is_built_for_amd64_and_pushed_under_its_content_tag(stack):
    # A fresh run next to the hash: service/ may change while the suite runs.
    graph = run_program(stack)
    tag = content_tag(ROOT / "service")
    image = graph.one(IMAGE)
    url = graph.outputs["ecrRepositoryUrl"]
    assert re.fullmatch(r"src-[0-9a-f]{12}", tag)
    assert image.get("tags") == [f"{url}:{tag}"]
    assert image.get("context") == {"location": "service"}  # relative: the render is portable
    assert image.get("dockerfile") == {"location": "service/Dockerfile"}
    assert image.get("platforms") == ["linux/amd64"]
    assert image.get("push") is True
    assert image.get("buildOnPreview") is False


def test_the_push_authenticates_with_an_ecr_token_kept_secret(graph):
    image = graph.one(IMAGE)
    (registry,) = image.get("registries")
    assert registry["address"] == graph.outputs["ecrRepositoryUrl"]
    assert registry["username"] == "AWS"
    assert image.is_secret("registries")


def test_every_pod_runs_the_pushed_image_by_tag_and_digest(graph):
    ref = graph.one(IMAGE).outputs["ref"]
    assert re.fullmatch(r".+:src-[0-9a-f]{12}@sha256:[0-9a-f]{64}", ref)
    assert graph.outputs["image"] == ref
    pods = [d.get("spec.template.spec") for d in deployments(graph)]
    pods.append(graph.one("kubernetes:batch/v1:Job").get("spec.template.spec"))
    assert {c["image"] for pod in pods for c in pod["containers"]} == {ref}


def test_a_prebuilt_image_is_deployed_as_configured_and_nothing_is_built():
    graph = run_program("prod", {"buildImage": False, "image": PREBUILT})
    assert graph.of_type(IMAGE) == []
    assert graph.of_type("pulumi:providers:docker-build") == []
    assert graph.outputs["image"] == PREBUILT
    for deployment in deployments(graph):
        (container,) = deployment.get("spec.template.spec.containers")
        assert container["image"] == PREBUILT
        assert deployment.get("metadata.labels")["app.kubernetes.io/version"] == "1.4.2"
    assert graph.one(REPOSITORY)  # the repository exists either way


def test_the_content_tag_ignores_what_docker_ignores_and_follows_the_code(tmp_path):
    context = tmp_path / "service"
    (context / "pkg" / "__pycache__").mkdir(parents=True)
    (context / ".dockerignore").write_text("**/__pycache__\n*.egg-info\n")
    (context / "Dockerfile").write_text("FROM scratch\n")
    (context / "pkg" / "app.py").write_text("print(1)\n")
    first = content_tag(context)
    (context / "pkg" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (context / "x.egg-info").mkdir()
    (context / "x.egg-info" / "PKG-INFO").write_text("noise\n")
    assert content_tag(context) == first
    (context / "pkg" / "app.py").write_text("print(2)\n")
    assert content_tag(context) != first
