"""One grammar for the names a user hands us: a parameter file accepts exactly the project
ids and version tags that the cloud wing accepts in resource names and registry calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from vertex_rlhf.config import names
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError

GCS = "vertex_ai.pipeline_root=gs://bucket/root"
pytestmark = pytest.mark.usefixtures("project_env")


def accepted_in_params(params_dir: Path, key: str, value: str) -> bool:
    try:
        load_params("dev", [f"{key}='{value}'", GCS], params_dir)
    except ConfigError as error:
        assert any(key in p for p in error.problems), error.problems
        return False
    return True


@pytest.mark.parametrize(
    "tag",
    ["1.0.0", "latest", "2.0.0-rc.1", "sha256:" + "a" * 64, "1..2", "../x", "a/b", "-x", "x" * 129],
)
def test_template_versions_follow_the_registry_grammar(params_dir: Path, tag: str) -> None:
    expected = names.tag_problem(tag, digest_ok=True) is None
    assert accepted_in_params(params_dir, "vertex_ai.template_version", tag) == expected


@pytest.mark.parametrize(
    "project",
    ["123456789012", "rlhf-test-project", "example.com:my-project", "ab", "My-Proj", "a/b"],
)
def test_projects_follow_the_resource_name_grammar(params_dir: Path, project: str) -> None:
    expected = names.project_problem(project) is None
    assert accepted_in_params(params_dir, "vertex_ai.project_id", project) == expected
    job = f"projects/{project}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"
    if expected:
        assert names.parse_job_name(job)[0] == project
    else:
        with pytest.raises(ConfigError):
            names.parse_job_name(job)


def test_the_grammar_refuses_what_the_registry_would_normalise() -> None:
    assert names.tag_problem("1..2") is not None
    assert names.tag_problem("1.0.0") is None
