"""Load profiles: what users and producers of tasks do over time.

A profile is a YAML file in bench/autoscale/profiles/ (or any path): a duration, how values
between the points are read (`step`: each holds until the next point; `linear`), and per series
a list of `[seconds, value]` points:

    chats_per_s        chats arriving at the load balancer
    model_latency_s    the model's answer time for a chat
    tasks_per_s        tasks submitted
    task_latency_s     how long one task runs on a worker (its model calls)
    high_share         the share of tasks on the high-priority stream (0..1)
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parent / "profiles"
SERIES = ("chats_per_s", "model_latency_s", "tasks_per_s", "task_latency_s", "high_share")


@dataclass(frozen=True)
class Load:
    """The load at one instant."""

    chats_per_s: float
    model_latency_s: float
    tasks_per_s: float
    task_latency_s: float
    high_share: float


@dataclass(frozen=True)
class Profile:
    """A named load over `duration_s` seconds."""

    name: str
    description: str
    duration_s: int
    interpolate: str
    series: dict[str, tuple[tuple[float, float], ...]]

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> Profile:
        interpolate = data.get("interpolate", "step")
        if interpolate not in ("step", "linear"):
            raise ValueError(f"profile {name}: interpolate {interpolate!r}; allowed: step, linear")
        unknown = set(data.get("series", {})) - set(SERIES)
        if unknown:
            raise ValueError(f"profile {name}: unknown series {sorted(unknown)}; allowed: {SERIES}")
        series = {}
        for key in SERIES:
            points = tuple((float(t), float(v)) for t, v in data["series"].get(key, [[0, 0]]))
            if not points or points[0][0] != 0 or any(b[0] <= a[0] for a, b in pairwise(points)):
                raise ValueError(f"profile {name}: {key} must start at 0 s, times increasing")
            if any(v < 0 for _, v in points) or (
                key == "high_share" and any(v > 1 for _, v in points)
            ):
                raise ValueError(f"profile {name}: {key} has a value out of range")
            series[key] = points
        if any(v <= 0 for _, v in series["model_latency_s"] + series["task_latency_s"]):
            raise ValueError(f"profile {name}: latencies must be above 0 s")
        return cls(name, data.get("description", ""), int(data["duration_s"]), interpolate, series)

    def at(self, t: float) -> Load:
        return Load(**{key: self._value(self.series[key], t) for key in SERIES})

    def _value(self, points: tuple[tuple[float, float], ...], t: float) -> float:
        index = bisect.bisect_right([p[0] for p in points], t) - 1
        t0, v0 = points[index]
        if self.interpolate == "step" or index + 1 == len(points):
            return v0
        t1, v1 = points[index + 1]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def available() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def load(name_or_path: str) -> Profile:
    """A shipped profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = FOLDER / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ValueError(f"no profile {name_or_path!r}; shipped: {', '.join(available())}")
    return Profile.from_dict(path.stem, yaml.safe_load(path.read_text()))
