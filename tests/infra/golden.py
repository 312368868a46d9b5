"""Golden plans: what each stack's program registers, kept in the repository to catch drift.

A golden plan holds, per stack, every resource's engine URN, type, name and inputs (secrets
redacted) and every rendered Kubernetes manifest. `test_plan_identity.py` compares the program
of today against it: a restructure must leave every resource with the same identity and inputs
(a resource that moved under a new component carries an alias to its old URN), so an existing
stack's next `pulumi up` shows no replacement and no update.

After an intended change to the plan, rewrite the files and review their diff:

    venv/bin/python -m tests.infra.golden --write
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

from infra.offline.mocking import Graph, redact
from infra.offline.render import kubernetes_manifest, manifest_filename
from tests.infra.pulumi_harness import STACKS, run_program

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
# The image tag is a hash of service/ (and the mocks derive the image digest from it): both
# move with every change of the service, not with the plan.
_CONTENT_TAG = re.compile(r"src-[0-9a-f]{12}")
CONTENT_TAG_PLACEHOLDER = "src-CONTENT"
_IMAGE_DIGEST = re.compile(r"(src-CONTENT@sha256:)[0-9a-f]{64}")


def _mask(text: str) -> str:
    return _IMAGE_DIGEST.sub(r"\1DIGEST", _CONTENT_TAG.sub(CONTENT_TAG_PLACEHOLDER, text))


def _normalise(value: Any) -> Any:
    return json.loads(_mask(json.dumps(value, sort_keys=True)))


def snapshot(graph: Graph) -> dict[str, Any]:
    """The golden form of one run: resources by engine URN, manifests by file name."""
    resources = [
        {
            "urn": r.engine_urn,
            "type": r.type,
            "name": r.name,
            "custom": r.custom,
            "aliases": sorted(r.aliases),
            "inputs": _normalise(redact(r.raw_inputs)),
        }
        for r in sorted(graph.resources, key=lambda r: r.engine_urn)
    ]
    manifests = {}
    for resource in graph.resources:
        manifest = kubernetes_manifest(resource)
        if manifest is not None:
            text = yaml.safe_dump(manifest, sort_keys=True, default_flow_style=False)
            manifests[manifest_filename(manifest)] = _mask(text)
    return {"resources": resources, "manifests": dict(sorted(manifests.items()))}


def path_of(stack: str) -> Path:
    """Where the golden plan of `stack` lives."""
    return GOLDEN_DIR / f"{stack}.json"


def load(stack: str) -> dict[str, Any]:
    """The committed golden plan of `stack` (image tag and digest masked)."""
    return json.loads(_mask(path_of(stack).read_text()))


def write(stack: str) -> Path:
    """Rewrite the golden plan of `stack` from the program as it is now."""
    GOLDEN_DIR.mkdir(exist_ok=True)
    path = path_of(stack)
    path.write_text(json.dumps(snapshot(run_program(stack)), indent=1, sort_keys=True) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.infra.golden")
    parser.add_argument("--write", action="store_true", help="rewrite the golden plans")
    args = parser.parse_args()
    if not args.write:
        parser.error("nothing to do: pass --write to rewrite tests/infra/golden/*.json")
    for stack in STACKS:
        print(f"wrote {write(stack)}")


if __name__ == "__main__":
    main()
