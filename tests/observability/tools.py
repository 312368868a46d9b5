"""promtool and amtool as `make tools` unpacks them (Debian's packages, into .tools/)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools" / "root" / "usr" / "bin"
OBSERVABILITY = ROOT / "observability"


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool or amtool; fail (never skip) when `make tools` has not installed it."""
    path = BIN / tool
    assert path.is_file(), f"{tool} is missing: run `make tools` (make test does)"
    return subprocess.run(
        [str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )
