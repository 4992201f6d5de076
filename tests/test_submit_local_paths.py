"""Submit stops before a request exists when Vertex could not run it; no invented project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT
from tests.test_environment_arg import rlhf
from vertex_rlhf.cloud import submission
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError


@pytest.mark.usefixtures("project_env")
def test_build_request_refuses_local_datasets() -> None:
    params = load_params("local")
    template = submission.local_template(REPO / "compiled")
    with pytest.raises(ConfigError) as caught:
        submission.build_request(params, "local", template, "abc")
    keys = [problem.split(":")[0] for problem in caught.value.problems]
    assert keys == ["dataset.preference_dataset", "dataset.prompt_dataset", "dataset.eval_dataset"]
    assert "Cloud Storage" in caught.value.problems[0]


@pytest.mark.parametrize("flags", [["--dry-run"], []])
def test_submit_of_local_data_stops_with_config_002(flags: list[str]) -> None:
    result = rlhf("submit", "local", *flags)
    assert result.returncode == 12
    assert result.stdout == ""
    assert "is a local path; Vertex AI reads datasets from Cloud Storage" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_adds_the_traceback_and_keeps_the_exit_status() -> None:
    result = rlhf("submit", "local", "--dry-run", LOG_LEVEL="DEBUG")
    assert result.returncode == 12
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("  - dataset.eval_dataset")


@pytest.mark.parametrize("env", ["dev", "local", "prod"])
@pytest.mark.parametrize("command", [["check"], ["submit", "--dry-run"]])
def test_no_environment_invents_a_project(env: str, command: list[str]) -> None:
    result = rlhf(command[0], env, *command[1:], project=None)
    assert result.returncode == 12
    assert "environment variable GOOGLE_CLOUD_PROJECT is not set" in result.stderr
    assert "vertex_ai.project_id" in result.stderr


def test_steps_needs_no_project() -> None:
    assert rlhf("steps", "dev", project=None).returncode == 0


def test_params_files_hold_no_project_fallback() -> None:
    for path in Path(REPO / "params").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "GOOGLE_CLOUD_PROJECT," not in text, path
    assert TEST_PROJECT not in (REPO / "params/dev.yaml").read_text(encoding="utf-8")
