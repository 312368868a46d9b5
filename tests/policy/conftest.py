"""The policy tests import the pack (policy/) and the infra mocks harness (tests/infra)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "tests" / "infra", ROOT / "policy"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
