"""ECR and the image: immutable, scanned, encrypted, pruned; pushed and run by digest."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.components.registry import content_tag
from tests.infra import ecr_push
from tests.infra.ecr_push import Build, Destination
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
def test_the_service_is_built_for_amd64_and_pushed_by_digest_without_a_tag(stack):
    graph = graph_of(stack)
    image = graph.one(IMAGE)
    url = graph.outputs["ecrRepositoryUrl"]
    assert image.get("tags", None) is None
    assert image.get("push") is False  # `push` would add a tagged export
    (export,) = image.get("exports")
    assert export["registry"]["names"] == [url]
    assert export["registry"]["push"] is True
    assert export["registry"]["pushByDigest"] is True
    assert ecr_push.destinations(image) == [
        Destination(f"agent-platform-{stack}-agent-service", None)
    ]
    assert image.get("context") == {"location": "service"}  # relative: the render is portable
    assert image.get("dockerfile") == {"location": "service/Dockerfile"}
    assert image.get("platforms") == ["linux/amd64"]
    assert image.get("buildOnPreview") is False


def test_the_push_authenticates_with_an_ecr_token_kept_secret(graph):
    image = graph.one(IMAGE)
    (registry,) = image.get("registries")
    assert registry["address"] == graph.outputs["ecrRepositoryUrl"]
    assert registry["username"] == "AWS"
    assert image.is_secret("registries")


def test_every_pod_runs_the_pushed_image_by_digest():
    # A fresh run next to the hash: service/ may change while the suite runs.
    graph = run_program("dev")
    digest = graph.one(IMAGE).outputs["digest"]
    ref = f"{graph.outputs['ecrRepositoryUrl']}@{digest}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert graph.outputs["image"] == ref
    pods = [d.get("spec.template.spec") for d in deployments(graph)]
    pods.append(graph.one("kubernetes:batch/v1:Job").get("spec.template.spec"))
    assert {c["image"] for pod in pods for c in pod["containers"]} == {ref}
    # The source tree the image came from stays visible on the pods.
    for deployment in deployments(graph):
        labels = deployment.get("metadata.labels")
        assert labels["app.kubernetes.io/version"] == content_tag(ROOT / "service")


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


# --- redeploys: the same tree built again is another image ----------------------------------


def build(machine: str, tree: str = "tree-1") -> Build:
    """A build of `tree`: the layers differ by builder, umask and time, so the digest does."""
    layer = "sha256:" + json.dumps([tree, machine]).encode().hex().ljust(64, "0")[:64]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "c" * 64,
            "size": 1024,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 9}
        ],
    }
    return Build(json.dumps(manifest), manifest["mediaType"])


@pytest.fixture
def ecr(dev):
    with mock_aws():
        client = boto3.client("ecr", region_name="us-east-1")
        ecr_push.create_repository(client, dev.one(REPOSITORY))
        yield client


def deploy(ecr, graph, image: Build) -> str:
    """`pulumi up` of one build: push it where the program pushes, return what the pods run."""
    for destination in ecr_push.destinations(graph.one(IMAGE)):
        ecr_push.push(ecr, destination, image)
    return ecr_push.pod_reference(graph, image)


def test_a_second_machine_deploying_the_same_tree_pushes_its_own_image(ecr, dev):
    assert dev.one(REPOSITORY).get("imageTagMutability") == "IMMUTABLE"
    first, second = build("laptop, umask 022"), build("ci runner, umask 002, newer buildkit")
    assert first.digest != second.digest
    first_ref = deploy(ecr, dev, first)
    second_ref = deploy(ecr, dev, second)
    assert ecr_push.resolve(ecr, second_ref) == second.manifest
    # Never moves: what the first deployment runs still pulls the first image.
    assert ecr_push.resolve(ecr, first_ref) == first.manifest
    assert first_ref != second_ref


def test_a_revert_deploys_the_old_tree_again_as_a_new_image_or_the_same_one(ecr, dev):
    old, new = build("ci", tree="tree-1"), build("ci", tree="tree-2")
    deploy(ecr, dev, old)
    deploy(ecr, dev, new)
    rebuilt = build("ci, a day later", tree="tree-1")  # the revert, not reproducible
    assert ecr_push.resolve(ecr, deploy(ecr, dev, rebuilt)) == rebuilt.manifest
    # A reproducible (or cached) rebuild is the very same image: found, not pushed again.
    (destination,) = ecr_push.destinations(dev.one(IMAGE))
    assert ecr_push.push(ecr, destination, old) is False
    assert ecr_push.resolve(ecr, deploy(ecr, dev, old)) == old.manifest
    images = ecr.describe_images(repositoryName=destination.repository)["imageDetails"]
    assert sorted(i["imageDigest"] for i in images) == sorted(b.digest for b in (old, new, rebuilt))


def test_the_replay_refuses_a_second_image_under_an_immutable_tag(ecr, dev):
    # What the redeploy tests guard against: a tag per source tree on an immutable repository.
    tagged = Destination(f"agent-platform-{dev.stack}-agent-service", "src-0123456789ab")
    assert ecr_push.push(ecr, tagged, build("laptop")) is True
    assert ecr_push.push(ecr, tagged, build("laptop")) is False  # the same image: skipped
    with pytest.raises(ClientError) as refused:
        ecr_push.push(ecr, tagged, build("ci runner"))
    assert refused.value.response["Error"]["Code"] in ecr_push.REFUSED
