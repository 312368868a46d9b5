"""How a configuration key is declared: once, as a field of a typed section model.

    class NetworkConfig(Section, title="Network"):
        az_count: Int = key("azCount", default=3, check=between(2, 6),
                            help="Availability zones used; ...")

`key()` gives the field its Pulumi name (the alias), its default in each environment
(`default=` for all, or `dev=`/`staging=`/`prod=`), what it allows and what it does. Everything
else derives from that one declaration: the loader (`infra.config.loader`) reads and validates
the key, the errors name it, `infra.config.docs` writes Pulumi.yaml's `config:` block and the
README table, and the tests walk the same declarations.

A `Check` is a rule one value must pass. It says what it allows (the text of error messages and
docs) and which values it refuses (the tests feed them to the program and expect the error).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, get_origin

import pulumi
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

NAMESPACE = "agent-platform"
ENVIRONMENTS = ("dev", "staging", "prod")
REVIEW_STACK = re.compile(r"^pr-[0-9]+$")


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. A RunError, so `pulumi preview` prints only the message."""


# --- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A rule for one value: the test, what it allows, and values it refuses (for the tests)."""

    test: Callable[[Any], bool]
    allowed: str
    refuses: tuple[Any, ...] = ()

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))


def between(lo: int, hi: int, unit: str = "") -> Check:
    """An integer from `lo` to `hi` inclusive."""
    return Check(lambda v: lo <= v <= hi, f"{lo}..{hi}{unit}", (lo - 1, hi + 1))


def one_of(*values: str) -> Check:
    """One of `values`, exactly as written."""
    return Check(lambda v: v in values, " | ".join(values), ("not-" + values[0],))


def among(values: Sequence[int], allowed: str) -> Check:
    """One of a set of integers (such as CloudWatch's retention periods)."""
    missing = next(n for n in range(min(values), max(values)) if n not in values)
    return Check(lambda v: v in values, allowed, (missing,))


def rule(test: Callable[[Any], bool], allowed: str, *refuses: Any) -> Check:
    """Any predicate, with the words for what it allows and at least one value it refuses."""
    if not refuses:
        raise ValueError(f"a rule needs a refused example ({allowed})")
    return Check(test, allowed, refuses)


def optional(check: Check) -> Check:
    """`check`, or the empty string (which means "not set")."""
    return Check(lambda v: v == "" or check(v), f"{check.allowed}, or empty", check.refuses)


# --- value types: parse what `pulumi config` hands over (always text) or plain Python values ----


def _format_error(kind: str) -> PydanticCustomError:
    return PydanticCustomError("key_format", kind, {"kind": kind})


def _integer(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _format_error("an integer")
        return int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _format_error("an integer")
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false"):
            raise _format_error("true | false")
        return text == "true"
    if not isinstance(value, bool):
        raise _format_error("true | false")
    return value


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _names(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise _format_error("a JSON list of") from None
        else:
            value = text.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(i, str) for i in value):
        raise _format_error("a list of strings:")
    return tuple(i.strip() for i in value)


def _at_least_one(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise PydanticCustomError("key_empty", "at least one", {})
    return value


Int = Annotated[int, BeforeValidator(_integer)]
Bool = Annotated[bool, BeforeValidator(_boolean)]
Text = Annotated[str, BeforeValidator(_text)]
UpperText = Annotated[str, BeforeValidator(_upper)]
Names = Annotated[tuple[str, ...], BeforeValidator(_names)]
NonEmptyNames = Annotated[tuple[str, ...], BeforeValidator(_names), AfterValidator(_at_least_one)]
Secret = Annotated[Any, "secret"]  # a secret pulumi.Output[str], or None when unset

_TYPE_NAMES = {int: "integer", bool: "boolean", str: "string", tuple: "array"}


# --- keys ---------------------------------------------------------------------------------------

_UNSET: Any = object()


@dataclass(frozen=True)
class KeySpec:
    """What `key()` attaches to a field; `Key` adds where the field lives."""

    name: str
    defaults: tuple[Any, Any, Any]
    allowed: str
    help: str
    check: Check | None


def _checked(spec: KeySpec) -> AfterValidator:
    def validate(value: Any) -> Any:
        if spec.check is None or value is None:
            return value
        for item in value if isinstance(value, tuple) else (value,):
            if not spec.check(item):
                raise PydanticCustomError("key_check", "not allowed", {"item": item})
        return value

    return AfterValidator(validate)


def key(
    name: str,
    *,
    help: str,
    default: Any = _UNSET,
    dev: Any = _UNSET,
    staging: Any = _UNSET,
    prod: Any = _UNSET,
    check: Check | None = None,
    allowed: str | None = None,
) -> Any:
    """A configuration key as a pydantic field (see the module docstring).

    The field's own default is prod's: a section built in code without config gets the safe
    production values. `allowed` defaults to the check's words.
    """
    if default is not _UNSET:
        defaults = (default, default, default)
    else:
        defaults = (dev, staging, prod)
        if _UNSET in defaults:
            raise ValueError(f"{name}: give default= or all of dev=, staging=, prod=")
    words = allowed or (check.allowed if check else "")
    spec = KeySpec(name, defaults, words, help, check)  # type: ignore[arg-type]
    info: FieldInfo = Field(defaults[2], alias=name)
    info.metadata.extend([spec, _checked(spec)])
    return info


@dataclass(frozen=True)
class Key:
    """One declared key, as the loader, the docs and the tests see it."""

    name: str
    type: str  # string | integer | boolean | array | secret
    defaults: tuple[Any, Any, Any]  # dev, staging, prod
    allowed: str
    help: str
    check: Check | None
    section: str  # the section's title
    path: tuple[str, str] = field(default=("", ""))  # (StackConfig attribute, field name)

    def default(self, environment: str) -> Any:
        """The default in `environment` (dev, staging or prod)."""
        return self.defaults[ENVIRONMENTS.index(environment)]

    @property
    def varies(self) -> bool:
        """True when the default depends on the environment."""
        return len({json.dumps(d) for d in self.defaults}) > 1

    @property
    def full_name(self) -> str:
        """The key as `pulumi config` spells it."""
        return f"{NAMESPACE}:{self.name}"

    def of(self, config: Any) -> Any:
        """This key's value on a loaded StackConfig."""
        return getattr(getattr(config, self.path[0]), self.path[1])


def _type_name(info: FieldInfo) -> str:
    if "secret" in info.metadata:
        return "secret"
    return _TYPE_NAMES[get_origin(info.annotation) or info.annotation]


class Section(BaseModel):
    """A group of keys (one table section in the docs, its `title`); immutable once validated."""

    model_config = ConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="forbid",
        arbitrary_types_allowed=True,
        validate_default=True,
    )

    @classmethod
    def keys(cls, attribute: str = "") -> Iterator[Key]:
        """The keys of this section in declaration order."""
        for field_name, info in cls.model_fields.items():
            spec = next((m for m in info.metadata if isinstance(m, KeySpec)), None)
            if spec is None:
                continue
            kind = _type_name(info)
            yield Key(
                name=spec.name,
                type=kind,
                defaults=spec.defaults,
                allowed=spec.allowed or ("true | false" if kind == "boolean" else ""),
                help=spec.help,
                check=spec.check,
                section=cls.model_config.get("title") or "",
                path=(attribute, field_name),
            )
