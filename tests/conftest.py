"""Points the tests at this checkout's loopback servers.

`scripts/local-services.sh` (`make services`, or `make test` through its `run`) writes the ports
it uses to .local/services.env: another checkout may hold the default ones. A TEST_DATABASE_URL
or TEST_REDIS_URL already in the environment wins.
"""

from __future__ import annotations

import os
from pathlib import Path

SERVICES_ENV = Path(__file__).resolve().parents[1] / ".local" / "services.env"


def _read(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name.strip()] = value.strip()
    return values


if SERVICES_ENV.is_file():
    for _name, _value in _read(SERVICES_ENV).items():
        if _name in ("TEST_DATABASE_URL", "TEST_REDIS_URL"):
            os.environ.setdefault(_name, _value)
