"""The Makefile is the user's entry point: `make help` lists every target with what it does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _phony_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert phony, "the Makefile declares its targets .PHONY"
    return set(phony.group(1).split())


def test_make_help_lists_every_target_with_its_description():
    make = shutil.which("make")
    assert make, "make is part of the README's set-up"
    listed = subprocess.run(
        [make, "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=30,
    ).stdout  # fmt: skip
    described = {}
    for line in listed.splitlines():
        name, _, description = line.strip().partition(" ")
        described[name] = description.strip()
    assert _phony_targets() <= set(described), _phony_targets() - set(described)
    assert all(described[t] for t in _phony_targets()), described


def test_make_without_a_target_prints_help_and_installs_nothing():
    first = re.search(r"^([a-zA-Z_-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert first and first.group(1) == "help"
