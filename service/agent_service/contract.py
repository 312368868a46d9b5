"""The service's side of its contract with the platform, derived from the code that enforces it.

`python -m agent_service.contract` prints it as JSON (keys sorted, stable); `--write PATH` writes
it. The repository keeps the output in `service/contract.json` (a test fails when it is stale),
and the platform reads that file instead of restating what the service accepts. Its shape:

    {
      "port": 8000,                      # the container port the API listens on (PORT's default)
      "metrics_port": 9090,              # where the API and the worker serve Prometheus metrics
                                         # (METRICS_PORT's default; never on "port")
      "run_as_user": 10001,              # the image's numeric USER and group (service/Dockerfile)
      "run_as_group": 10001,
      "environment": {
        "accepted": ["AGENT_TYPE", ...], # every variable the service reads (Settings' fields)
        "secret": ["API_KEYS", ...]      # those that belong in a Secret, not a ConfigMap
      },
      "requires": {                      # per process: every requirement must be met, and a
        "api": [[["API_KEYS"]], ...],    # requirement is met when all variables of any one of
        "worker": [...],                 # its groups are set, e.g. the database is
        "migrate": [...]                 # [["DATABASE_URL"], ["DB_SECRET_ARN", "DB_HOST"]]
      },
      "probes": {"liveness_path": "/health", "readiness_path": "/ready",
                 "metrics_path": "/metrics"},
      "commands": {                      # argv of each process and of the worker's exec probes
        "api": [...], "worker": [...], "migrate": [...],
        "worker_liveness": [...], "worker_readiness": [...]
      }
    }

"Requires" is what a process needs in a cluster: the API and the worker can run without
PostgreSQL or Redis on one machine (embedded SQLite, in-process queue), but several pods must
share both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from . import heartbeat, metrics_server, migrate, readiness, worker
from .api import probes
from .config import Settings

# The image's numeric user and group; a test checks service/Dockerfile's USER line against them.
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001

# Secret although not SecretStr: the URL carries the password or the auth token.
SECRET_URLS = ("database_url", "redis_url")

DATABASE = (("database_url",), ("db_secret_arn", "db_host"))
REQUIRES: dict[str, tuple[tuple[tuple[str, ...], ...], ...]] = {
    "api": ((("api_keys",),), DATABASE, (("redis_url",),)),
    "worker": (DATABASE, (("redis_url",),)),
    "migrate": (DATABASE,),
}


def _env(field: str) -> str:
    if field not in Settings.model_fields:
        raise ValueError(f"{field!r} is not a setting of agent_service.config.Settings")
    return field.upper()


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _command(module: str, *args: str) -> list[str]:
    return ["python", "-m", module, *args]


def _probe_paths() -> dict[str, str]:
    paths = {route.endpoint.__name__: route.path for route in probes.router.routes}
    return {
        "liveness_path": paths["health"],
        "readiness_path": paths["ready"],
        "metrics_path": metrics_server.PATH,  # on metrics_port
    }


def build() -> dict[str, Any]:
    """The contract as plain data (see the module docstring for its shape)."""
    fields = Settings.model_fields
    secret = {name for name, f in fields.items() if _is_secret(f.annotation)}
    secret.update(SECRET_URLS)
    return {
        "port": fields["port"].default,
        "metrics_port": fields["metrics_port"].default,
        "run_as_user": RUN_AS_USER,
        "run_as_group": RUN_AS_GROUP,
        "environment": {
            "accepted": sorted(_env(name) for name in fields),
            "secret": sorted(_env(name) for name in secret),
        },
        "requires": {
            process: [[[_env(f) for f in group] for group in need] for need in needs]
            for process, needs in REQUIRES.items()
        },
        "probes": _probe_paths(),
        "commands": {
            "api": _command(__package__ or "agent_service"),
            "worker": _command(worker.__name__),
            "migrate": _command(migrate.__name__),
            "worker_liveness": _command(
                heartbeat.__name__, "--max-age", f"{heartbeat.DEFAULT_MAX_AGE:g}"
            ),
            "worker_readiness": _command(
                readiness.__name__, "--max-age", f"{readiness.DEFAULT_MAX_AGE:g}"
            ),
        },
    }


def render() -> str:
    """The contract as the JSON text service/contract.json holds."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_service.contract",
        description="Print the service's contract with the platform as JSON.",
    )
    parser.add_argument("--write", metavar="PATH", help="write it to PATH instead of stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
