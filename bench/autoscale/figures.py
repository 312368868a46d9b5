"""The per-pod figures the simulator uses, read from a `make bench` results file.

Fields read (bench/results/<date>.json, written by `python -m bench`):
- `scenarios.model_chat.service_cpu_us_per_request`: CPU per chat through a model with latency
  (the production path: the model client's work included);
- `scenarios.health.service_peak_rss_mb`: the service's memory with no chat in flight;
- `scenarios.model_chat.service_peak_rss_mb` and `settings.model_users`: memory with that many
  chats in flight, hence memory per chat in flight;
- `scenarios.tasks.cpu_percent.workers` and `scenarios.tasks.rps`: the workers' CPU (percent of
  one core, all workers together) per completed task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass(frozen=True)
class PodFigures:
    """What one service process costs, measured."""

    source: str
    chat_cpu_s: float  # CPU seconds per chat
    base_rss_mib: float  # memory of an idle pod
    chat_rss_mib: float  # extra memory per chat in flight
    task_cpu_s: float  # worker CPU seconds per task

    @classmethod
    def from_results(cls, path: Path) -> PodFigures:
        data = json.loads(path.read_text())
        try:
            scenarios = data["scenarios"]
            model_chat = scenarios["model_chat"]
            base = float(scenarios["health"]["service_peak_rss_mb"])
            in_flight = float(data["settings"]["model_users"])
            tasks = scenarios["tasks"]
            return cls(
                source=str(path),
                chat_cpu_s=float(model_chat["service_cpu_us_per_request"]) / 1e6,
                base_rss_mib=base,
                chat_rss_mib=max(0.0, float(model_chat["service_peak_rss_mb"]) - base) / in_flight,
                task_cpu_s=float(tasks["cpu_percent"]["workers"]) / 100 / float(tasks["rps"]),
            )
        except (KeyError, TypeError, ZeroDivisionError) as error:
            raise ValueError(f"{path}: not a `make bench` results file ({error!r})") from error

    def summary(self) -> dict[str, Any]:
        return {
            "chat CPU": f"{self.chat_cpu_s * 1e3:.3f} ms",
            "pod memory": f"{self.base_rss_mib:.0f} MiB + {self.chat_rss_mib:.3f} MiB per chat",
            "task CPU": f"{self.task_cpu_s * 1e3:.2f} ms",
        }


def newest_results(folder: Path = RESULTS) -> Path:
    """The newest results file (names are dates, YYYY-MM-DD.json)."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no results in {folder}: run `make bench`")
    return files[-1]
