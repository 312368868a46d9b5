"""Strict offline validation of custom resources against the vendored CRDs of pinned releases.

`kubernetes-validate` ships the built-in kinds only; custom resources (TargetGroupBinding, and
KEDA's and Karpenter's kinds) are checked here against the CRDs in `infra/components/crds/`
(`<project>-<version>/`, each file listed with its upstream repository, commit, path and sha256
in the folder's SOURCES.json; a file whose sha256 differs is refused).

    report = validate(manifest)           # CrdNotVendored if no vendored CRD serves it
    report.errors, report.unchecked        # both empty: valid

What is checked, as the API server would with `fieldValidation=Strict`:
- the version's openAPIV3Schema, converted to JSON Schema: unknown fields rejected (every object
  without `x-kubernetes-preserve-unknown-fields`), types, enums, patterns, bounds, required,
  `x-kubernetes-int-or-string`, `nullable`, `format: int32/int64` ranges, embedded resources;
- `metadata`: known ObjectMeta fields, name and label/annotation types; a namespace for
  namespaced kinds and none for cluster-scoped ones (stricter than the server, which ignores it);
- schema `default:`s applied first, then every CEL rule (`infra/offline/celrules.py`) and the
  uniqueness of `x-kubernetes-list-type: map|set` lists.
Not checked: admission webhooks (KEDA's formula and HPA ownership checks, Karpenter's), `format`
other than int32/int64, and `pattern` runs on Python's `re` (RE2 on the server).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infra.offline.celrules import Rule, compile_rule, rules_of, run_rules

CRD_ROOT = Path(__file__).resolve().parents[1] / "components" / "crds"

_JSON_SCHEMA_KEYS = (
    "type", "required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf",
)  # fmt: skip
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SERVER_SET_META = (
    "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink",
)  # fmt: skip
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_LABEL},
        "labels": _STRINGS,
        "annotations": _STRINGS,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        **{key: {} for key in _SERVER_SET_META},
    },
    "additionalProperties": False,
}


class CrdNotVendored(LookupError):
    """No vendored CRD serves this apiVersion and kind."""


class VendoredFileChanged(RuntimeError):
    """A vendored CRD file no longer matches the sha256 its SOURCES.json records."""


@dataclass
class Report:
    """The outcome of validating one object."""

    errors: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # rules that applied but could not run

    @property
    def valid(self) -> bool:
        """True when nothing failed and every applicable rule ran."""
        return not self.errors and not self.unchecked


@dataclass(frozen=True)
class Crd:
    """One served version of a vendored CRD, ready to validate objects."""

    group: str
    version: str
    kind: str
    namespaced: bool
    source: str  # the vendored folder, e.g. keda-2.20.2
    schema: dict[str, Any]  # openAPIV3Schema as vendored
    validator: Any  # jsonschema validator of the converted schema
    rules: dict[tuple[str, str], Rule]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> Report:
        """Schema, metadata and CEL rules; `old` makes it an update (transition rules run)."""
        report = Report()
        defaulted = apply_defaults(copy.deepcopy(obj), self.schema)
        for error in sorted(self.validator.iter_errors(defaulted), key=lambda e: list(e.path)):
            where = _data_path(error.absolute_path)
            report.errors.append(f"{where}: {error.message}")
        namespace = (obj.get("metadata") or {}).get("namespace")
        if self.namespaced and not namespace:
            report.errors.append(f"metadata.namespace: {self.kind} is namespaced; set one")
        if not self.namespaced and namespace:
            report.errors.append(f"metadata.namespace: {self.kind} is cluster-scoped; remove it")
        if report.errors:
            return report  # CEL assumes a structurally valid object, as on the server
        previous = apply_defaults(copy.deepcopy(old), self.schema) if old else None
        findings = run_rules(self.schema, self.rules, defaulted, previous)
        report.errors += findings.errors
        report.unchecked += findings.unchecked
        return report


def _data_path(parts: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return path.lstrip(".") or "<root>"


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A structural openAPIV3Schema node as JSON Schema (2020-12) that rejects unknown fields."""
    out: dict[str, Any] = {k: node[k] for k in _JSON_SCHEMA_KEYS if k in node}
    if node.get("format") in _INT_RANGES:
        low, high = _INT_RANGES[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(key) is True and bound in out:  # OpenAPI 3.0: a flag on minimum/maximum
            out[key] = out.pop(bound)
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = to_json_schema(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = to_json_schema(extra)
    elif isinstance(extra, bool):
        out["additionalProperties"] = extra
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [to_json_schema(x) for x in node[key]]
    if "not" in node:
        out["not"] = to_json_schema(node["not"])
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if out.get("type") == "object" and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False  # pruned by the server; Strict reports it
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def apply_defaults(value: Any, node: dict[str, Any]) -> Any:
    """Fill schema `default:`s into `value` in place (structural defaulting) and return it."""
    if isinstance(value, dict):
        for name, sub in node.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(value[name], sub)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                value[key] = apply_defaults(value[key], extra)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        return [apply_defaults(item, node["items"]) for item in value]
    return value


def _root_schema(group: str, version: str, kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    root = to_json_schema(schema)
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"const": f"{group}/{version}"}
    props["kind"] = {"const": kind}
    props["metadata"] = _OBJECT_META
    root["required"] = sorted({*root.get("required", []), "apiVersion", "kind", "metadata"})
    root["additionalProperties"] = False
    return root


def _without_helm_templates(text: str, path: Path) -> str:
    # KEDA's chart ships its CRDs as templates whose only directives sit in metadata.
    lines = [line for line in text.splitlines() if not line.strip().startswith("{{")]
    cleaned = "\n".join(re.sub(r"\{\{.*?\}\}", "helm-template", line) for line in lines)
    for document in yaml.load_all(cleaned, Loader=yaml.CSafeLoader):
        if document and "helm-template" in json.dumps(document.get("spec")):
            raise ValueError(f"{path}: a Helm template inside a CRD's spec cannot be vendored")
    return cleaned


def _verified_files(folder: Path) -> list[Path]:
    sources = json.loads((folder / "SOURCES.json").read_text())
    files = []
    for entry in sources["files"]:
        path = folder / entry["file"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            raise VendoredFileChanged(
                f"{path}: sha256 {digest} differs from SOURCES.json ({entry['sha256']}); "
                f"vendor it again from {sources['repo']} at {sources['commit']}"
            )
        files.append(path)
    return files


@cache
def catalog(root: Path = CRD_ROOT) -> dict[tuple[str, str], Crd]:
    """Every served version of every vendored CRD, by (apiVersion, kind)."""
    found: dict[tuple[str, str], Crd] = {}
    for folder in sorted(p for p in root.iterdir() if (p / "SOURCES.json").is_file()):
        for path in _verified_files(folder):
            text = _without_helm_templates(path.read_text(), path)
            for document in yaml.load_all(text, Loader=yaml.CSafeLoader):
                if document and document.get("kind") == "CustomResourceDefinition":
                    for crd in _served_versions(document, folder.name):
                        found[(crd.api_version, crd.kind)] = crd
    return found


def _served_versions(document: dict[str, Any], source: str) -> list[Crd]:
    spec = document["spec"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", False):
            continue
        schema = version["schema"]["openAPIV3Schema"]
        root = _root_schema(spec["group"], version["name"], spec["names"]["kind"], schema)
        jsonschema.Draft202012Validator.check_schema(root)
        rules = {(path, e["rule"]): compile_rule(path, e) for path, e in rules_of(schema)}
        out.append(
            Crd(
                group=spec["group"],
                version=version["name"],
                kind=spec["names"]["kind"],
                namespaced=spec["scope"] == "Namespaced",
                source=source,
                schema=schema,
                validator=jsonschema.Draft202012Validator(root),
                rules=rules,
            )
        )
    return out


def crd_for(api_version: str, kind: str) -> Crd:
    """The vendored CRD serving `api_version` and `kind`, or CrdNotVendored."""
    crd = catalog().get((api_version, kind))
    if crd is None:
        known = sorted(f"{a} {k}" for a, k in catalog())
        raise CrdNotVendored(
            f"no vendored CRD serves {api_version} {kind} (infra/components/crds/); "
            f"vendored: {', '.join(known)}"
        )
    return crd


def validate(obj: dict[str, Any], old: dict[str, Any] | None = None) -> Report:
    """Validate a custom resource (an update when `old` is given) against its vendored CRD."""
    return crd_for(str(obj.get("apiVersion")), str(obj.get("kind"))).validate(obj, old)


def unrunnable_rules() -> list[str]:
    """Every CEL rule of the vendored CRDs this evaluator cannot run, with the reason."""
    return sorted(
        f"{crd.source} {crd.kind} {rule.schema_path}: {rule.rule!r} ({rule.unrunnable})"
        for crd in catalog().values()
        for rule in crd.rules.values()
        if rule.unrunnable
    )
