"""`python -m infra render --stack STACK --out DIR`: the offline plan of a stack.

Runs the program under mocks with the stack's config (secure values replaced by a placeholder,
marked secret) and writes `DIR/resources.json` (see docs/offline.md; sorted, secrets as
"[secret]") and `DIR/manifests/` (one YAML file per Kubernetes object). Needs no CLI, no
credentials and no network.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from collections import Counter
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from infra.offline import mocking, stackfiles
from infra.offline.mocking import Graph, RecordedResource
from infra.stack import build

# Pulumi constructs under `kubernetes:` that are not Kubernetes objects themselves.
_NOT_OBJECT_GROUPS = ("helm.sh", "yaml", "kustomize")


def render(stack: str, out: Path, root: Path | None = None, today: date | None = None) -> Graph:
    """Run the program for `stack` and write the plan into `out`.

    `today` (default: the current UTC date) is the day the EKS support calendar is checked on.
    """
    root = root or Path.cwd()
    files = stackfiles.load(root, stack)
    graph = mocking.run(
        functools.partial(build, today=today),
        project=files.project,
        stack=stack,
        config=files.config,
        secret_keys=files.secret_keys,
        logger=quiet_logger(),
    )
    write(graph, out)
    return graph


def quiet_logger() -> logging.Logger:
    """A logger that swallows the engine's log (the render prints its own summary)."""
    # Pulumi's engine log would otherwise reach stderr through logging's last-resort handler.
    logger = logging.getLogger("infra.offline.render.engine")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def write(graph: Graph, out: Path) -> None:
    """Write resources.json and manifests/ (replacing manifests of an earlier render)."""
    out.mkdir(parents=True, exist_ok=True)
    document = graph.to_document()
    (out / "resources.json").write_text(json.dumps(document, indent=2) + "\n")
    manifests = out / "manifests"
    if manifests.exists():
        shutil.rmtree(manifests)
    manifests.mkdir()
    for resource in graph.resources:
        manifest = kubernetes_manifest(resource)
        if manifest is not None:
            path = manifests / manifest_filename(manifest)
            path.write_text(yaml.safe_dump(manifest, sort_keys=True, default_flow_style=False))


def _intify(value: Any) -> Any:
    # The wire format turns every number into a float; Kubernetes wants integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _intify(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_intify(v) for v in value]
    return value


def kubernetes_manifest(resource: RecordedResource) -> dict[str, Any] | None:
    """The Kubernetes object a `kubernetes:<group>/<version>:<Kind>` resource creates."""
    parts = resource.type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    group_version, kind = parts[1], parts[2]
    if group_version.split("/")[0] in _NOT_OBJECT_GROUPS or "/" not in group_version:
        return None
    body = _intify(mocking.redact(_secret_values_by_key(kind, resource.raw_inputs)))
    api_version = body.pop("apiVersion", None) or group_version.removeprefix("core/")
    kind = body.pop("kind", None) or kind
    metadata = dict(body.pop("metadata", None) or {})
    # Without metadata.name the provider auto-names the object from its logical name.
    metadata.setdefault("name", resource.name)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def _secret_values_by_key(kind: str, raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Secret's data as `{key: <secret>}`, so the manifest keeps its shape once redacted.

    A secret nested in an object makes the whole property secret on the wire; the key names are
    not secret (the pods' environment names them), their values stay "[secret]".
    """
    if kind != "Secret":
        return raw
    out = dict(raw)
    for prop in ("data", "stringData"):
        value = raw.get(prop)
        if mocking.is_secret(value) and isinstance(value["value"], Mapping):
            out[prop] = {k: mocking.wrap_secret(v) for k, v in value["value"].items()}
    return out


def manifest_filename(manifest: dict[str, Any]) -> str:
    """`<namespace>_<kind>_<name>.yaml`; cluster-scoped objects use `cluster` as namespace."""
    metadata = manifest["metadata"]
    namespace = metadata.get("namespace") or "cluster"
    return f"{namespace}_{manifest['kind']}_{metadata['name']}.yaml".lower()


def summary(graph: Graph) -> str:
    """One line per resource type with its count, then the total."""
    counts = Counter(r.type for r in graph.resources)
    width = len(str(len(graph.resources)))
    lines = [f"{count:>{width}}  {token}" for token, count in sorted(counts.items())]
    lines.append(f"{len(graph.resources):>{width}}  resources in total ({graph.stack})")
    return "\n".join(lines)
