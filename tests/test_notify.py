"""E-mail alerts: an exit handler sends Vertex's notification; recipients are a run parameter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, TEST_PROJECT, fresh_pipeline_root
from tests.standins.vertex import VertexStandIn
from tests.test_submit import fast
from vertex_rlhf.cloud import submission
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError
from vertex_rlhf.template import signature

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
NOTIFY_TASK = "vertex-pipelines-notification-email"
HANDLER = "exit-handler-1"


def current_spec() -> dict[str, Any]:
    path = signature.current_template_path(REPO / "compiled")
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec


def assert_exit_handler_notifies(spec: dict[str, Any]) -> None:
    """The pipeline's work runs in an exit handler whose exit task is Vertex's e-mail op."""
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {HANDLER, NOTIFY_TASK}
    body = spec["components"][root[HANDLER]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"validate-dataset", "compute-steps", "rlhf-train-template"} <= set(body)
    notify = root[NOTIFY_TASK]
    # Runs whatever the work's outcome, and is told that outcome by Vertex.
    assert notify["dependentTasks"] == [HANDLER]
    assert notify["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    inputs = notify["inputs"]["parameters"]
    assert inputs["pipeline_task_final_status"] == {"taskFinalStatus": {"producerTask": HANDLER}}
    assert inputs["recipients"] == {"componentInputParameter": "notify_emails"}
    assert not notify.get("cachingOptions", {}).get("enableCache", False)
    # Vertex recognises the task by its executor: GCPC's notification container.
    executor_name = spec["components"][notify["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][executor_name]["container"]
    assert container["args"][:2] == ["--type", "VertexNotificationEmail"]
    assert container["image"].startswith("gcr.io/ml-pipeline/google-cloud-pipeline-components:")
    # Recipients are a run parameter (no address in the template), optional, none by default.
    recipients = spec["root"]["inputDefinitions"]["parameters"]["notify_emails"]
    assert recipients["parameterType"] == "LIST"
    assert recipients["isOptional"] is True and recipients["defaultValue"] == []
    assert recipients["description"]


def test_compiled_template_carries_the_exit_handler_notification() -> None:
    assert_exit_handler_notifies(current_spec())


def request_for(vertex: VertexStandIn, *extra: str) -> submission.SubmitRequest:
    overrides = [
        f"vertex_ai.api_endpoint={vertex.url}",
        f"vertex_ai.service_account={SERVICE_ACCOUNT}",
        fresh_pipeline_root(),
        *extra,
    ]
    params = load_params("dev", overrides, REPO / "params")
    template = submission.local_template(REPO / "compiled")
    return submission.build_request(params, "dev", template, "abc123def456")


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_submit_sends_the_recipients_as_a_run_parameter(vertex: VertexStandIn) -> None:
    emails = ["ml-oncall@example.com", "Ana.Lee+rlhf@corp.example.org"]
    request = request_for(vertex, f"vertex_ai.notify_emails=[{','.join(emails)}]")
    submission.submit(request, retry=fast(), read_retry=fast())
    [create] = vertex.calls("POST")
    body = create["body"]
    assert body["runtimeConfig"]["parameterValues"]["notify_emails"] == emails
    assert_exit_handler_notifies(body["pipelineSpec"])


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_no_recipients_sends_no_list_and_the_template_default_applies(
    vertex: VertexStandIn,
) -> None:
    submission.submit(request_for(vertex), retry=fast(), read_retry=fast())
    [create] = vertex.calls("POST")
    assert "notify_emails" not in create["body"]["runtimeConfig"]["parameterValues"]
    spec = create["body"]["pipelineSpec"]
    assert spec["root"]["inputDefinitions"]["parameters"]["notify_emails"]["defaultValue"] == []


DATASETS = """
dataset:
  preference_dataset: gs://bucket/prefs/*.jsonl
  prompt_dataset: gs://bucket/prompts/*.jsonl
"""


def overlay(params_dir: Path, text: str) -> str:
    """params/alerts.yaml: ``text`` first (so its line numbers hold), then the datasets."""
    content = textwrap.dedent(text).lstrip() + DATASETS
    (params_dir / "alerts.yaml").write_text(content, encoding="utf-8")
    return "alerts"


def problems_of(params_dir: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_params(overlay(params_dir, text), params_dir=params_dir)
    assert caught.value.code == "CONFIG_002"
    return caught.value.problems


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("emails", "complaint"),
    [
        (["not-an-address"], "'not-an-address' is not an e-mail address"),
        (["a@example.com", "ops@localhost"], "'ops@localhost' is not an e-mail address"),
        (["a b@example.com"], "'a b@example.com' is not an e-mail address"),
        (["a@example.com", "A@Example.com"], "listed more than once: a@example.com"),
        ([f"u{i}@example.com" for i in range(4)], "at most 3 recipients, got 4"),
        ([""], "'' is not an e-mail address"),
    ],
)
def test_bad_recipients_name_the_file_line_and_key(
    params_dir: Path, emails: list[str], complaint: str
) -> None:
    listed = "".join(f"    - {json.dumps(e)}\n" for e in emails)
    [problem] = problems_of(
        params_dir, f"vertex_ai:\n  region: us-central1\n  notify_emails:\n{listed}"
    )
    assert problem.startswith(f"{params_dir}/alerts.yaml:3: vertex_ai.notify_emails: "), problem
    assert complaint in problem


@pytest.mark.usefixtures("project_env")
def test_a_single_address_instead_of_a_list_is_refused(params_dir: Path) -> None:
    [problem] = problems_of(params_dir, "vertex_ai:\n  notify_emails: ops@example.com\n")
    assert (
        problem
        == f"{params_dir}/alerts.yaml:2: vertex_ai.notify_emails: must be a YAML list,"
        + (" e.g. [a, b] or one '- item' per line")
    )


@pytest.mark.usefixtures("project_env")
def test_good_recipients_load(params_dir: Path) -> None:
    params = load_params(
        overlay(params_dir, "vertex_ai:\n  notify_emails: [ops@example.com]\n"),
        params_dir=params_dir,
    )
    assert params.vertex_ai.notify_emails == ["ops@example.com"]
    values = signature.pipeline_parameter_values(params)
    assert values["notify_emails"] == ["ops@example.com"]
    template = signature.current_template_path(REPO / "compiled")
    signature.check_against_signature(values, signature.template_inputs(template), template.name)


def test_signature_check_refuses_a_non_list_for_a_list_input() -> None:
    template = signature.current_template_path(REPO / "compiled")
    with pytest.raises(ConfigError) as caught:
        signature.check_against_signature(
            {"notify_emails": "ops@example.com"}, signature.template_inputs(template), "t.yaml"
        )
    assert "input 'notify_emails' takes LIST" in caught.value.problems[0]


def test_cli_check_reports_a_bad_address_without_a_traceback(params_dir: Path) -> None:
    overlay(params_dir, "vertex_ai:\n  notify_emails: [oncall-at-example.com]\n")
    result = subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", "check", "alerts", "--params-dir", str(params_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        timeout=120,
    )
    assert result.returncode == 12, result.stderr
    assert "error[CONFIG_002]" in result.stderr
    assert (
        f"{params_dir}/alerts.yaml:2: vertex_ai.notify_emails: 'oncall-at-example.com' is not"
        " an e-mail address"
    ) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("item", ["no", "off", "1.10", "42"])
def test_a_yaml_11_word_in_the_list_is_refused_with_its_place(params_dir: Path, item: str) -> None:
    # A list of text is text too: `no` would reach Vertex as 'False'.
    [problem] = problems_of(
        params_dir, f"vertex_ai:\n  notify_emails:\n    - ops@example.com\n    - {item}\n"
    )
    assert problem.startswith(f"{params_dir}/alerts.yaml:2: vertex_ai.notify_emails[1]: "), problem
    assert "takes text" in problem and "quote it" in problem
