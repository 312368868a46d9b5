"""Registry component: the service's ECR repository and, optionally, the image built into it.

The repository is private, KMS-encrypted, scans every push and has immutable tags (a tag always
means the same image); its lifecycle policy keeps the most recent images. With `build` set,
service/ is built with BuildKit (pulumi-docker-build) and pushed by digest, without a tag, and
the image reference handed on is `<repository>@<digest>`.

Why no tag: a build is not reproducible (timestamps, the builder, the checkout's umask), so the
same source tree built again, after a revert or on another machine, is a different image. Under
a tag derived from the tree that push would meet an immutable tag already taken by the first
build and be refused. A digest names exactly one image: it never collides and never moves, and
pushing an image the repository already has is a no-op (the push finds the digest and skips it).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.config import RegistryConfig


def content_tag(context: Path) -> str:
    """`src-<12 hex>`: a hash of every file Docker would send (the .dockerignore applies).

    A label of the source (the pods' app.kubernetes.io/version), not an ECR tag: two builds of
    one tree are different images."""
    ignore = context / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.is_file() else [])
        if line.strip() and not line.startswith("#")
    ]
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        if _ignored(relative, patterns):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"src-{digest.hexdigest()[:12]}"


def _ignored(relative: str, patterns: list[str]) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in (p.rstrip("/") for p in patterns):
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            # `**/x` matches x at any depth.
            if pattern.startswith("**/") and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], bare):
                return True
    return False


def lifecycle_policy(keep: int) -> str:
    """Expire all but the `keep` most recently pushed images."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Keep the last {keep} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": keep,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
    )


@dataclass(frozen=True)
class RegistryArgs:
    """Inputs of the Registry component."""

    settings: RegistryConfig  # the stack's registry keys
    repository_name: str
    force_delete: bool  # non-prod: destroy the stack even with images left
    build_context: str | None  # a directory relative to the project (None: no build)


class Registry(pulumi.ComponentResource):
    """ECR repository (+ the built and pushed image)."""

    repository_url: pulumi.Output[str]
    image_ref: pulumi.Output[str] | None  # `<repo>@sha256:...` when built

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("agent-platform:infra:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")
            ],
            force_delete=args.force_delete,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(args.settings.keep_images),
            opts=child,
        )

        self.image_ref = None
        if args.build_context is not None:
            token = aws.ecr.get_authorization_token_output(
                registry_id=repository.registry_id,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            builder = docker_build.Provider(f"{name}-docker-build", opts=child)
            context = args.build_context
            image = docker_build.Image(
                f"{name}-image",
                context=docker_build.BuildContextArgs(location=context),
                dockerfile=docker_build.DockerfileArgs(location=f"{context}/Dockerfile"),
                platforms=[docker_build.Platform.LINUX_AMD64],  # the nodes are x86_64
                # No tags: pushed to the repository by digest only (see the module docstring);
                # `push` would add a second, tagged registry export.
                push=False,
                exports=[
                    docker_build.ExportArgs(
                        registry=docker_build.ExportRegistryArgs(
                            names=[repository.repository_url], push=True, push_by_digest=True
                        )
                    )
                ],
                registries=[
                    docker_build.RegistryArgs(
                        address=repository.repository_url,
                        username=token.user_name,
                        password=pulumi.Output.secret(token.password),
                    )
                ],
                # Previews need no Docker daemon; the build happens on `pulumi up`.
                build_on_preview=False,
                opts=pulumi.ResourceOptions(parent=self, provider=builder),
            )
            self.image_ref = pulumi.Output.concat(repository.repository_url, "@", image.digest)

        self.repository_url = repository.repository_url
        self.register_outputs({"repositoryUrl": self.repository_url, "imageRef": self.image_ref})
