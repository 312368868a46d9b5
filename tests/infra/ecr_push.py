"""The push of the rendered image, replayed against moto's ECR.

BuildKit's registry export (what pulumi-docker-build runs) pushes an image manifest like
containerd's pusher: it first asks the registry for the manifest (HEAD by tag, or by digest when
pushing by digest) and skips the upload when that already names the same digest; otherwise it
PUTs the manifest under the tag (or its digest). ECR refuses a PUT under an immutable tag that
already exists. `destinations()` reads where the rendered `docker-build:index:Image` pushes;
`push()` does the HEAD-then-PUT on moto. The redeploy tests (tests/infra/test_registry.py) push
synthetic builds; `make image-redeploy` (root, buildah) pushes real ones:

    python -m tests.infra.ecr_push --stack dev OCI_LAYOUT_DIR...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

REPOSITORY = "aws:ecr/repository:Repository"
IMAGE = "docker-build:index:Image"
# moto answers ImageAlreadyExistsException where ECR answers ImageTagAlreadyExistsException.
REFUSED = {"ImageTagAlreadyExistsException", "ImageAlreadyExistsException"}


@dataclass(frozen=True)
class Destination:
    """One place a push writes the manifest: a repository, under a tag or by digest (tag None)."""

    repository: str
    tag: str | None


@dataclass(frozen=True)
class Build:
    """An image manifest as a builder produced it."""

    manifest: str
    media_type: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest.encode()).hexdigest()


def _split(reference: str) -> tuple[str, str | None]:
    """`host/repo[:tag]` -> (repo, tag)."""
    path = reference.split("/", 1)[1] if "/" in reference else reference
    name, sep, tag = path.rpartition(":")
    return (name, tag) if sep and "/" not in tag else (path, None)


def destinations(image: Any) -> list[Destination]:
    """Where the rendered Image's registry pushes go (`push` and registry exports)."""
    tags = image.get("tags", None) or []
    exports = [e["registry"] for e in image.get("exports", None) or [] if "registry" in e]
    if image.get("push", False):
        exports.append({"push": True})  # --push: a registry export of the tags
    found = []
    for export in exports:
        if not export.get("push", True):
            continue
        names = tags or export.get("names") or []
        for name in names:
            repository, tag = _split(name)
            found.append(Destination(repository, None if export.get("pushByDigest") else tag))
    return found


def _digest_at(ecr: Any, repository: str, image_id: dict[str, str]) -> str | None:
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[image_id])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            return None
        raise
    return details["imageDetails"][0]["imageDigest"]


def push(ecr: Any, destination: Destination, build: Build) -> bool:
    """Push `build` as BuildKit would; True when uploaded, False when the registry had it.

    Raises the registry's ClientError when it refuses the push (an immutable tag taken)."""
    if destination.tag is None:
        if _digest_at(ecr, destination.repository, {"imageDigest": build.digest}):
            return False
        extra: dict[str, str] = {}
    else:
        if _digest_at(ecr, destination.repository, {"imageTag": destination.tag}) == build.digest:
            return False
        extra = {"imageTag": destination.tag}
    ecr.put_image(
        repositoryName=destination.repository,
        imageManifest=build.manifest,
        imageManifestMediaType=build.media_type,
        imageDigest=build.digest,
        **extra,
    )
    return True


def resolve(ecr: Any, reference: str) -> str | None:
    """The manifest an image reference `host/repo[:tag]@sha256:...` pulls, or None."""
    name, _, digest = reference.partition("@")
    repository, _ = _split(name)
    found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    return found["images"][0]["imageManifest"] if found["images"] else None


def create_repository(ecr: Any, rendered: Any) -> None:
    """The repository as the program declares it (name, tag mutability)."""
    ecr.create_repository(
        repositoryName=rendered.get("name"),
        imageTagMutability=rendered.get("imageTagMutability"),
    )


def pod_reference(graph: Any, build: Build) -> str:
    """The image the pods would run for `build`: the program's `image` output for its digest."""
    image = graph.one(IMAGE)
    return graph.outputs["image"].replace(image.outputs["digest"], build.digest)


def read_oci_layout(directory: Path) -> Build:
    """The one image manifest of an OCI image layout (`buildah push IMAGE oci:DIR`)."""
    (descriptor,) = json.loads((directory / "index.json").read_text())["manifests"]
    algorithm, hexdigest = descriptor["digest"].split(":", 1)
    manifest = (directory / "blobs" / algorithm / hexdigest).read_text()
    return Build(manifest, descriptor["mediaType"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("layouts", nargs="+", type=Path, help="OCI image layouts, in push order")
    args = parser.parse_args(argv)

    import boto3
    from moto import mock_aws

    from tests.infra.pulumi_harness import run_program

    graph = run_program(args.stack)
    builds = [read_oci_layout(d) for d in args.layouts]
    failed = False
    with mock_aws():
        ecr = boto3.client("ecr", region_name="us-east-1")
        create_repository(ecr, graph.one(REPOSITORY))
        targets = destinations(graph.one(IMAGE))
        print(f"the program pushes to: {targets}")
        for directory, build in zip(args.layouts, builds, strict=True):
            for target in targets:
                try:
                    uploaded = push(ecr, target, build)
                    outcome = "pushed" if uploaded else "already in the repository: skipped"
                except ClientError as exc:
                    outcome = f"REFUSED: {exc.response['Error']['Code']}"
                    failed = True
                print(f"{directory.name}: {build.digest} -> {outcome}")
        for directory, build in zip(args.layouts, builds, strict=True):
            reference = pod_reference(graph, build)
            pulled = resolve(ecr, reference)
            ok = pulled == build.manifest
            failed |= not ok
            print(f"{directory.name}: pods run {reference}: {'resolves' if ok else 'MISSING'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
