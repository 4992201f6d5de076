"""Caching, told truly: what the template caches, and a job-level resume that still checks.

Vertex's cache key of a task covers its component spec, its output definitions and its
resolved input values. Our checks and step computation take the job's uuid
(``{{$.pipeline_job_uuid}}``) as an input, so their key never matches an earlier job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from pipelines.rlhf_tuning import JOB_UUID, PIPELINE_NAME, PIPELINE_VERSION
from tests.conftest import REPO
from tests.standins.vertex import VertexStandIn
from tests.test_submit import fast, make_request
from vertex_rlhf import cli
from vertex_rlhf.cloud import submission
from vertex_rlhf.config.params import load_params

TEMPLATE = REPO / "compiled" / f"{PIPELINE_NAME}-{PIPELINE_VERSION}.yaml"
NOTIFY_TEMPLATE = REPO / "compiled" / f"{PIPELINE_NAME}-{PIPELINE_VERSION}-notify.yaml"
OURS = {"validate-dataset", "validate-dataset-2", "validate-dataset-3", "compute-steps"}
NOTIFY = "vertex-pipelines-notification-email"  # the exit task: never cached by the template
GCPC_TRAINERS = {"reward-model-trainer", "reinforcer"}
GCPC_IMPORTERS = {
    "private-text-importer",
    "private-text-comparison-importer",
    "private-text-comparison-importer-2",
}


def tasks(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every task of every DAG in a pipeline spec."""
    for component in [spec["root"], *spec["components"].values()]:
        yield from component.get("dag", {}).get("tasks", {}).items()


def job_uuid_inputs(task: dict[str, Any]) -> list[str]:
    parameters = task.get("inputs", {}).get("parameters", {})
    return [
        name
        for name, value in parameters.items()
        if value.get("runtimeValue", {}).get("constant") == JOB_UUID
    ]


@pytest.fixture(scope="module", params=[TEMPLATE, NOTIFY_TEMPLATE], ids=["plain", "notify"])
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(request.param.read_text(encoding="utf-8"))
    return loaded


def test_the_placeholder_is_the_job_uuid() -> None:
    assert JOB_UUID == "{{$.pipeline_job_uuid}}"


def test_our_tasks_take_the_job_uuid_and_nothing_of_gcpc_does(spec: dict[str, Any]) -> None:
    with_uuid = {name for name, task in tasks(spec) if job_uuid_inputs(task)}
    assert with_uuid == OURS
    for name, task in tasks(spec):
        if name in OURS:
            assert job_uuid_inputs(task) == ["job_uuid"]
            assert not task.get("cachingOptions", {}).get("enableCache"), name


def test_what_the_template_caches(spec: dict[str, Any]) -> None:
    caching: dict[str, bool] = {}
    for name, task in tasks(spec):
        if "cachingOptions" in task:  # sub-DAGs have none
            caching[name] = caching.get(name, False) or task["cachingOptions"].get(
                "enableCache", False
            )
    # GCPC turns caching off for its trainers and its dataset importers; we for our tasks
    # and for the e-mail (every run's end is reported), where the variant has it.
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    notify = {NOTIFY} if "notify_emails" in inputs else set()
    assert {name for name, on in caching.items() if not on} == (
        OURS | GCPC_TRAINERS | GCPC_IMPORTERS | notify
    )
    # GCPC's preprocessing, template and validation tasks keep it on.
    assert caching["rlhf-preprocessor"] and caching["validate-pipeline"]


@pytest.mark.usefixtures("project_env")
def test_enable_caching_true_is_accepted_now() -> None:
    params = load_params("dev", ["vertex_ai.enable_caching=true"])
    assert params.vertex_ai.enable_caching is True


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("caching", ["true", "null", "false"])
def test_the_request_vertex_receives(
    vertex: VertexStandIn, storage_emulator: str, caching: str
) -> None:
    request = make_request(vertex, f"vertex_ai.enable_caching={caching}")
    submission.submit(request, retry=fast(), read_retry=fast())
    [create] = vertex.calls("POST")
    sent = create["body"]["pipelineSpec"]
    enabled = {
        name: t.get("cachingOptions", {}).get("enableCache", False) for name, t in tasks(sent)
    }
    if caching == "true":  # resume: every task may reuse, the trainers too ...
        assert all(enabled.values())
    elif caching == "false":
        assert not any(enabled.values())
    else:  # the template's own settings
        assert not any(enabled[name] for name in OURS | GCPC_TRAINERS | GCPC_IMPORTERS)
        assert enabled["rlhf-preprocessor"]
    # ... and our checks carry the job's uuid whatever the setting: they always run.
    for name, task in tasks(sent):
        if name in OURS:
            assert job_uuid_inputs(task) == ["job_uuid"], name


@pytest.mark.usefixtures("project_env")
def test_a_dry_run_shows_the_caching_setting(
    vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_submit import overrides

    args = ["submit", "dev", "--dry-run", *overrides(vertex, "vertex_ai.enable_caching=true")]
    assert cli.main(args) == 0
    assert yaml.safe_load(capsys.readouterr().out)["enable_caching"] is True
