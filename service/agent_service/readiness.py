"""The worker's readiness: can its loop consume from the queue?

The worker loop records in WORKER_READY_FILE each successful round trip of its consumer (a read
from the streams, or the upkeep of the tasks it holds while all its slots are busy) and the last
error it met. A worker that cannot consume (Redis down or unreachable, its consumer group gone
and not recreated, ...) stops refreshing the file, and the check fails with the reason:

    python -m agent_service.readiness --max-age 30   # exit 0 ready, 1 not ready: one line why

Liveness (`agent_service.heartbeat`) asks whether the loop turns at all; this asks whether it
gets work. Standard library only, one small file read: a Kubernetes exec probe starts it every
period.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ENV = "WORKER_READY_FILE"
DEFAULT_FILE = str(Path(tempfile.gettempdir()) / "worker-ready")
# A read blocks at most ~0.5 s and the upkeep of a full worker runs every <= 5 s: 30 s without
# one means the worker has not been able to consume for several passes.
DEFAULT_MAX_AGE = 30.0


class ConsumeState:
    """Writes the consumer's state to `path`: when it last consumed, and its last error.

    Writes are atomic (a probe never reads half a file) and at most once per `every` seconds
    while nothing changes; an empty path disables them."""

    def __init__(self, path: str | None, every: float = 1.0) -> None:
        self.path = Path(path) if path else None
        self._every = every
        self._written = float("-inf")
        self._state: dict[str, object] = {"consumed_at": None, "error": None, "error_at": None}

    def started(self) -> None:
        """A new process has consumed nothing yet (replaces a previous container's file)."""
        self._write(force=True)

    def consumed(self) -> None:
        changed = self._state["error"] is not None or self._state["consumed_at"] is None
        self._state.update(consumed_at=time.time(), error=None, error_at=None)
        self._write(force=changed)

    def failed(self, error: str) -> None:
        changed = self._state["error"] != error
        self._state.update(error=error, error_at=time.time())
        self._write(force=changed)

    def _write(self, force: bool) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._written < self._every:
            return
        self._written = now
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w") as out:
                json.dump(self._state, out)
            os.replace(tmp, self.path)
        except OSError:
            # Unwritable: the file goes stale and the probe reports the worker not ready.
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)


def check(path: str, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """(ready, one line saying why) from the state file at `path`."""
    now = time.time() if now is None else now
    try:
        state = json.loads(Path(path).read_text())
        consumed_at, error = state.get("consumed_at"), state.get("error")
    except FileNotFoundError:
        return False, f"not ready: the worker has not started (no {path})"
    except (OSError, ValueError, AttributeError) as exc:
        return False, f"not ready: unreadable state in {path}: {exc}"
    last_error = f"; last error: {error}" if error else ""
    if consumed_at is None:
        return False, f"not ready: no read from the queue yet{last_error}"
    age = max(now - float(consumed_at), 0.0)
    if age > max_age:
        return False, (
            f"not ready: no read from the queue for {age:.0f}s (max {max_age:g}s){last_error}"
        )
    return True, f"ready: last read from the queue {age:.1f}s ago"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_service.readiness",
        description="Exit 0 when the worker consumed from its queue within --max-age seconds, "
        "1 otherwise (one line says why).",
    )
    parser.add_argument(
        "--max-age", type=float, default=DEFAULT_MAX_AGE, help="seconds (default %(default)g)"
    )
    parser.add_argument("--file", default=os.environ.get(ENV) or DEFAULT_FILE, help=f"${ENV}")
    args = parser.parse_args(argv)
    ready, why = check(args.file, args.max_age)
    print(why, file=sys.stdout if ready else sys.stderr)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
