"""The worker's heartbeat file, and the liveness check that reads it.

The worker loop touches WORKER_HEARTBEAT_FILE as it goes round (at most once a second), also
while Redis is down (that is readiness's business, not liveness's). A loop that hangs stops
touching it, and the check fails:

    python -m agent_service.heartbeat --max-age 60     # exit 0 fresh, 1 stale or missing

Deliberately light (standard library only): a Kubernetes exec probe starts it every period.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ENV = "WORKER_HEARTBEAT_FILE"
DEFAULT_FILE = str(Path(tempfile.gettempdir()) / "worker-heartbeat")
DEFAULT_MAX_AGE = 60.0


class Heartbeat:
    """Touches `path` when beat() is called, at most once per `every` seconds."""

    def __init__(self, path: str | None, every: float = 1.0) -> None:
        self.path = Path(path) if path else None
        self._every = every
        self._last = float("-inf")

    def beat(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        try:
            self.path.touch()
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()


def age(path: str) -> float | None:
    """Seconds since the last beat, or None when there has been none."""
    try:
        return max(time.time() - os.stat(path).st_mtime, 0.0)
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_service.heartbeat",
        description="Exit 0 when the worker's heartbeat is fresh, 1 when stale or missing.",
    )
    parser.add_argument(
        "--max-age", type=float, default=DEFAULT_MAX_AGE, help="seconds (default %(default)g)"
    )
    parser.add_argument("--file", default=os.environ.get(ENV) or DEFAULT_FILE, help=f"${ENV}")
    args = parser.parse_args(argv)
    seconds = age(args.file)
    if seconds is None:
        print(f"no heartbeat at {args.file}", file=sys.stderr)
        return 1
    if seconds > args.max_age:
        print(f"heartbeat stale: {seconds:.0f}s old (max {args.max_age:g}s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
