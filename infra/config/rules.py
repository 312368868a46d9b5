"""Rules across keys, raised from a section's validator as one-line messages naming a key.

They are raised as `key_rule` errors, which pydantic collects; the loader reports a bad single
value before a broken relation, whatever the order of the sections.
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ValidationInfo
from pydantic_core import PydanticCustomError

from infra.config.spec import NAMESPACE, KeySpec


def broken(key: str, text: str) -> PydanticCustomError:
    """A rule across keys that `key`'s value breaks: "<namespace>:<key>: <text>"."""
    message = f"{NAMESPACE}:{key}: {text}"
    return PydanticCustomError("key_rule", "{message}", {"message": message})


def _alias(model: BaseModel, field: str) -> str:
    return type(model).model_fields[field].alias or field


def ordered(model: BaseModel, info: ValidationInfo, *fields: str) -> None:
    """fields[0] <= fields[1] <= ..., or an error naming the first key out of order.

    The key the user set is blamed rather than a default, and the widest pair is checked first,
    so "min > max" is reported as such rather than against the desired size.
    """
    defaulted: set[str] = (info.context or {}).get("defaulted", set())
    names = [_alias(model, f) for f in fields]
    values = {n: getattr(model, f) for n, f in zip(names, fields, strict=True)}
    pairs = sorted(
        itertools.combinations(names, 2),
        key=lambda p: -abs(names.index(p[1]) - names.index(p[0])),
    )
    for low, high in pairs:
        if values[low] > values[high]:
            blamed = low if low not in defaulted or high in defaulted else high
            other = high if blamed == low else low
            relation = "greater than" if blamed == low else "less than"
            raise broken(
                blamed,
                f"{values[blamed]} is {relation} {other} ({values[other]}); "
                f"allowed: {' <= '.join(names)}",
            )


def at_most(model: BaseModel, low: str, high: str, size: Any) -> None:
    """`low` <= `high` as measured by `size` (e.g. Kubernetes quantities)."""
    lo, hi = getattr(model, low), getattr(model, high)
    if size(lo) > size(hi):
        a, b = _alias(model, low), _alias(model, high)
        raise broken(a, f"{lo!r} is greater than {b} ({hi!r}); allowed: {a} <= {b}")


def explicitly_set(model: BaseModel, info: ValidationInfo, field: str) -> bool:
    """Whether the user set `field`'s key (as far as the program can tell).

    The CLI hands the program Pulumi.yaml's project defaults as values, so a key whose default
    is the same in every environment counts as set only when its value differs from it.
    """
    if info.context is None or _alias(model, field) in info.context.get("defaulted", set()):
        return False
    spec = next(m for m in type(model).model_fields[field].metadata if isinstance(m, KeySpec))
    same_everywhere = len({repr(d) for d in spec.defaults}) == 1
    return not (same_everywhere and getattr(model, field) == spec.defaults[0])
