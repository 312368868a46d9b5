"""The CEL rules (`x-kubernetes-validations`) of a CRD schema, run the way the API server runs them.

The evaluator is cel-expr-python (Google's cel-cpp bindings, type-checked compile) with the cel
strings extension (`split`, which Kubernetes enables) and the Kubernetes regex library's `find`,
registered here because no Python CEL package ships it. Every rule is compiled once, when its CRD
is loaded; a rule that does not compile (a Kubernetes library function this environment lacks)
is kept with the reason, and validating an object that reaches it reports it as unchecked - it is
never skipped silently.

Semantics kept from the API server: `self` is the value at the rule's node (each element of a
list for rules under `items`, each value of a map for rules under `additionalProperties`); a rule
under a field the object does not set does not run; transition rules (those naming `oldSelf`) run
only on an update, with the old object's correlated value; a rule that errors at run time fails.
Not modelled: CEL cost limits, and `self`'s static type (it is `dyn` here; the schema types it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

# Functions of the Kubernetes CEL environment registered here (beyond standard CEL + ext strings).
REGISTERED_FUNCTIONS = ("find",)


def _k8s_find(value: str, pattern: str) -> str:
    # Kubernetes regex library: the first match, or "" (RE2 there; these patterns are RE2-safe).
    match = re.search(pattern, value)
    return match.group(0) if match else ""


@cache
def _environment(transition: bool) -> Any:
    variables = {"self": cel.Type.DYN}
    if transition:
        variables["oldSelf"] = cel.Type.DYN
    find = cel.FunctionDecl(
        "find",
        [
            cel.Overload(
                "string_find_string",
                cel.Type.STRING,
                [cel.Type.STRING, cel.Type.STRING],
                is_member=True,
                impl=_k8s_find,
            )
        ],
    )
    return cel.NewEnv(variables=variables, extensions=[ext_strings.ExtStrings()], functions=[find])


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry, compiled (or with the reason it cannot be)."""

    schema_path: str  # where it sits in the schema, e.g. `.spec.template.spec.requirements[*]`
    rule: str
    message: str
    transition: bool  # names oldSelf: runs on updates only
    program: Any = None
    unrunnable: str = ""  # why this environment cannot run it ("" when it can)

    def check(self, value: Any, old: Any = None) -> str | None:
        """None when the rule holds for `value`, else the message (or the run-time error)."""
        data = {"self": value} | ({"oldSelf": old} if self.transition else {})
        result = self.program.eval(data=data)
        if result.type() == cel.Type.ERROR:
            return f"{self.message} (rule {self.rule!r} failed to evaluate: {result.plain_value()})"
        return None if result.plain_value() is True else self.message


def compile_rule(schema_path: str, entry: dict[str, Any]) -> Rule:
    """Compile one entry; a rule the environment cannot compile comes back `unrunnable`."""
    text = entry["rule"]
    transition = re.search(r"\boldSelf\b", text) is not None
    message = entry.get("message") or f"failed rule: {text}"
    try:
        program = _environment(transition).compile(text)
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        return Rule(schema_path, text, message, transition, unrunnable=reason)
    return Rule(schema_path, text, message, transition, program)


def rules_of(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(schema path, entry) of every rule in an openAPIV3Schema, parents before children."""
    for entry in schema.get("x-kubernetes-validations", []):
        yield path, entry
    for name, sub in schema.get("properties", {}).items():
        yield from rules_of(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from rules_of(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from rules_of(schema["additionalProperties"], f"{path}[*]")


@dataclass
class Findings:
    """What running the rules over one object found."""

    errors: list[str]
    unchecked: list[str]  # rules that applied but could not run, with the reason


def run_rules(
    schema: dict[str, Any],
    compiled: dict[tuple[str, str], Rule],
    value: Any,
    old: Any = None,
) -> Findings:
    """Run every compiled rule that applies to `value` (and `old`, on an update)."""
    findings = Findings([], [])
    _walk(schema, compiled, value, old, "", "", findings)
    return findings


def _walk(
    schema: dict[str, Any],
    compiled: dict[tuple[str, str], Rule],
    value: Any,
    old: Any,
    schema_path: str,
    data_path: str,
    findings: Findings,
) -> None:
    where = data_path.lstrip(".") or "<root>"
    for entry in schema.get("x-kubernetes-validations", []):
        rule = compiled[(schema_path, entry["rule"])]
        if rule.transition and old is None:
            continue  # a create, or an element with no correlated old value: not run, as upstream
        if rule.unrunnable:
            findings.unchecked.append(f"{where}: {rule.rule!r} ({rule.unrunnable})")
            continue
        problem = rule.check(value, old)
        if problem:
            findings.errors.append(f"{where}: {problem}")
    _unique_list_entries(schema, value, where, findings)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                old_value = old.get(name) if isinstance(old, dict) else None
                _walk(sub, compiled, value[name], old_value, f"{schema_path}.{name}",
                      f"{data_path}.{name}", findings)  # fmt: skip
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                old_value = old.get(key) if isinstance(old, dict) else None
                _walk(extra, compiled, item, old_value, f"{schema_path}[*]",
                      f"{data_path}[{key!r}]", findings)  # fmt: skip
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            old_item = _correlated(schema, item, old)
            _walk(schema["items"], compiled, item, old_item, f"{schema_path}[*]",
                  f"{data_path}[{index}]", findings)  # fmt: skip


def _list_key(schema: dict[str, Any], item: Any) -> Any:
    if schema.get("x-kubernetes-list-type") == "set":
        return repr(item)
    keys = schema.get("x-kubernetes-list-map-keys", [])
    return tuple(repr(item.get(k)) if isinstance(item, dict) else None for k in keys)


def _correlated(schema: dict[str, Any], item: Any, old: Any) -> Any:
    # Only map and set lists correlate an element with the old list's (by key); others do not.
    if schema.get("x-kubernetes-list-type") not in ("map", "set") or not isinstance(old, list):
        return None
    key = _list_key(schema, item)
    return next((o for o in old if _list_key(schema, o) == key), None)


def _unique_list_entries(schema: dict[str, Any], value: Any, where: str, found: Findings) -> None:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("map", "set") or not isinstance(value, list):
        return
    keys = [_list_key(schema, item) for item in value]
    duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
    if duplicates:
        found.errors.append(f"{where}: duplicate entries in a list-type={list_type}: {duplicates}")
