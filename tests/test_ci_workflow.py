"""The GitHub Actions workflow for users' repositories, and .ci/run: the same offline checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on` as true
    return data


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE))


def step_commands(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_offline_job_and_ci_run_run_the_same_make_ci() -> None:
    jobs = workflow()["jobs"]
    assert step_commands(jobs["offline"]) == ["make ci"]
    ci_run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    # .ci/run spells out `make ci`'s prerequisites so that it calls the README's test
    # command (`make test`) itself.
    ci_rule = next(
        line
        for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
        if line.startswith("ci:")
    )
    parts = ci_rule.split("##")[0].split(":", 1)[1].split()
    assert [line for line in ci_run.splitlines() if line.startswith("make ")] == [
        "make setup",
        *(f"make {part}" for part in parts),
    ]
    assert "make test" in ci_run.splitlines()
    recipe = subprocess.run(
        ["make", "-n", "ci"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    for check in (
        "ruff check",
        "ruff format --check",
        "mypy",
        "pytest",
        "compile --check",
        "reference --check",
    ):
        assert check in recipe, check


def test_triggers_and_publish_only_on_a_version_tag() -> None:
    data = workflow()
    assert data["on"]["push"]["tags"] == ["v*"] and "pull_request" in data["on"]
    publish = data["jobs"]["publish"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert publish["needs"] == "offline"
    assert publish["permissions"]["id-token"] == "write"
    assert data["permissions"] == {"contents": "read"}
    assert step_commands(publish)[-1] == "make publish ENV=prod"


def test_every_make_target_the_workflow_uses_exists() -> None:
    jobs = workflow()["jobs"]
    used = {
        match
        for job in jobs.values()
        for command in step_commands(job)
        for match in re.findall(r"\bmake ([a-z][a-z-]*)", command)
    }
    assert used and used <= make_targets()


@pytest.mark.parametrize(("tag", "status"), [("current", 0), ("v9.9.9", 13)])
def test_the_tag_must_name_the_compiled_version(tag: str, status: int) -> None:
    [check] = [
        step["run"]
        for step in workflow()["jobs"]["publish"]["steps"]
        if step.get("name") == "the tag names the compiled version"
    ]
    current = json.loads((REPO / "compiled" / "manifest.json").read_text())["current"]
    name = f"v{current}" if tag == "current" else tag
    result = subprocess.run(
        ["bash", "-e", "-c", check],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GITHUB_REF_NAME": name},
    )
    assert result.returncode == status, result.stderr
    if status:
        assert result.stderr.startswith(f"error[PIPELINE_003]: tag {name} does not match")


def test_ci_run_is_executable_bash() -> None:
    path = REPO / ".ci" / "run"
    assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0
