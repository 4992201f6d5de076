"""E-mail only where it was asked for.

Each template version is compiled twice: without e-mail, and a ``-notify`` variant whose
exit task is Vertex's e-mail notification. What a run sends (dry run, a real create
against the Vertex AI stand-in, a registry version) holds the notification task exactly
when ``vertex_ai.notify_emails`` lists addresses.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CURRENT_VERSION, REPO, TEST_PROJECT, FakeClock, fresh_pipeline_root
from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import TASK_PARENTS, Step, VertexStandIn
from tests.test_monitor import watcher
from vertex_rlhf import cli
from vertex_rlhf.cloud import monitor, registry, submission
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError, DataError
from vertex_rlhf.template import plan, signature
from vertex_rlhf.views import run_report
from vertex_rlhf.views.plan import render_plan

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
NOTIFY_TASK = "vertex-pipelines-notification-email"
HANDLER = "exit-handler-1"
COMPILED = REPO / "compiled"
WORK_TASKS = {
    "validate-dataset",
    "validate-dataset-2",
    "validate-dataset-3",
    "compute-steps",
    "rlhf-train-template",
}
# No addresses, one, and the most Vertex takes.
RECIPIENTS = [
    [],
    ["ml-oncall@example.com"],
    ["ml-oncall@example.com", "Ana.Lee+rlhf@corp.example.org", "ops@example.net"],
]


def load(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec


def notification_tasks(spec: dict[str, Any]) -> list[str]:
    """Every task, at any depth, whose executor is GCPC's e-mail notification container."""
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    dags = [spec["root"]] + [c for c in spec.get("components", {}).values() if "dag" in c]
    found = []
    for dag in dags:
        for name, task in dag["dag"]["tasks"].items():
            component = spec["components"][task["componentRef"]["name"]]
            args = executors.get(component.get("executorLabel", ""), {}).get("container", {})
            if args.get("args", [])[:2] == ["--type", "VertexNotificationEmail"]:
                found.append(name)
    return found


def assert_exit_handler_notifies(spec: dict[str, Any]) -> None:
    """The pipeline's work runs in an exit handler whose exit task is Vertex's e-mail op."""
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {HANDLER, NOTIFY_TASK}
    body = spec["components"][root[HANDLER]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(body) == WORK_TASKS
    notify = root[NOTIFY_TASK]
    # Runs whatever the work's outcome, and is told that outcome by Vertex.
    assert notify["dependentTasks"] == [HANDLER]
    assert notify["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    inputs = notify["inputs"]["parameters"]
    assert inputs["pipeline_task_final_status"] == {"taskFinalStatus": {"producerTask": HANDLER}}
    assert inputs["recipients"] == {"componentInputParameter": "notify_emails"}
    assert not notify.get("cachingOptions", {}).get("enableCache", False)
    assert notification_tasks(spec) == [NOTIFY_TASK]
    container = spec["deploymentSpec"]["executors"]["exec-vertex-pipelines-notification-email"]
    assert container["container"]["image"].startswith(
        "gcr.io/ml-pipeline/google-cloud-pipeline-components:"
    )
    # Recipients are a run parameter (no address in the template), and this variant
    # cannot run without them.
    recipients = spec["root"]["inputDefinitions"]["parameters"]["notify_emails"]
    assert recipients["parameterType"] == "LIST"
    assert not recipients.get("isOptional") and "defaultValue" not in recipients
    assert recipients["description"]


def assert_no_notification(spec: dict[str, Any]) -> None:
    assert notification_tasks(spec) == []
    assert set(spec["root"]["dag"]["tasks"]) == WORK_TASKS
    assert "notify_emails" not in spec["root"]["inputDefinitions"]["parameters"]
    assert not any("notification" in name for name in spec["components"])


def assert_holds_notification(spec: dict[str, Any], wanted: bool) -> None:
    if wanted:
        assert_exit_handler_notifies(spec)
    else:
        assert_no_notification(spec)


@pytest.mark.parametrize("notify", [False, True], ids=["plain", "notify"])
def test_each_version_is_compiled_with_and_without_the_email_task(notify: bool) -> None:
    manifest = json.loads((COMPILED / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["templates"][CURRENT_VERSION]
    recorded = entry["notify"] if notify else entry
    suffix = "-notify" if notify else ""
    assert recorded["file"] == f"rlhf-tuning-{CURRENT_VERSION}{suffix}.yaml"
    path = COMPILED / recorded["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded["sha256"]
    assert_holds_notification(load(path), notify)


def test_both_variants_run_the_same_work() -> None:
    plain = load(submission.local_template(COMPILED).path)  # type: ignore[arg-type]
    notify = load(submission.local_template(COMPILED, notify=True).path)  # type: ignore[arg-type]
    body = notify["components"][notify["root"]["dag"]["tasks"][HANDLER]["componentRef"]["name"]]
    # Inside the handler, the pipeline's inputs are passed in as pipelinechannel--NAME.
    inner = json.dumps(body["dag"]["tasks"], sort_keys=True).replace('"pipelinechannel--', '"')
    assert json.loads(inner) == plain["root"]["dag"]["tasks"]
    for name, component in plain["components"].items():
        assert notify["components"][name] == component
    assert notify["deploymentSpec"]["executors"] == {
        **plain["deploymentSpec"]["executors"],
        "exec-vertex-pipelines-notification-email": notify["deploymentSpec"]["executors"][
            "exec-vertex-pipelines-notification-email"
        ],
    }
    plain_inputs = plain["root"]["inputDefinitions"]["parameters"]
    notify_inputs = dict(notify["root"]["inputDefinitions"]["parameters"])
    notify_inputs.pop("notify_emails")
    assert notify_inputs == plain_inputs


def overrides(vertex: VertexStandIn, emails: list[str], *extra: str) -> list[str]:
    return [
        f"vertex_ai.api_endpoint={vertex.url}",
        f"vertex_ai.service_account={SERVICE_ACCOUNT}",
        fresh_pipeline_root(),
        f"vertex_ai.notify_emails=[{','.join(emails)}]",
        *extra,
    ]


def version_label(emails: list[str], version: str = CURRENT_VERSION) -> str:
    return submission.sanitize_label(version + ("-notify" if emails else ""))


@pytest.mark.usefixtures("project_env", "storage_emulator")
@pytest.mark.parametrize("emails", RECIPIENTS, ids=["none", "one", "three"])
def test_a_submitted_run_holds_the_email_task_only_with_addresses(
    vertex: VertexStandIn, emails: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["submit", "dev", *overrides(vertex, emails)]) == 0, capsys.readouterr().err
    [create] = vertex.calls("POST")
    body = create["body"]
    assert_holds_notification(body["pipelineSpec"], bool(emails))
    values = body["runtimeConfig"]["parameterValues"]
    assert values.get("notify_emails") == (emails or None)
    assert body["labels"]["pipeline-version"] == version_label(emails)


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("emails", RECIPIENTS, ids=["none", "one", "three"])
def test_a_dry_run_names_the_variant_it_would_send(
    vertex: VertexStandIn, emails: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["submit", "dev", "--dry-run", *overrides(vertex, emails)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert vertex.requests == []
    source = Path(printed["template"]["source"])
    assert source.name == f"rlhf-tuning-{CURRENT_VERSION}{'-notify' if emails else ''}.yaml"
    assert printed["template"]["digest"] == registry.file_digest(source)
    assert_holds_notification(load(source), bool(emails))
    values = printed["pipelineJob"]["runtimeConfig"]["parameterValues"]
    assert values.get("notify_emails") == (emails or None)
    # The plan printed with it lists the e-mail task only when it runs.
    assert any(NOTIFY_TASK in task for task in printed["plan"]["cache"]) == bool(emails)


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("emails", RECIPIENTS, ids=["none", "one", "three"])
def test_the_plan_shows_the_email_task_only_with_addresses(emails: list[str]) -> None:
    params = load_params("dev", [f"vertex_ai.notify_emails=[{','.join(emails)}]"])
    built = plan.build_plan(params, COMPILED)
    shown = render_plan(built)
    assert ("e-mail when the run ends" in shown) == bool(emails)
    assert built.template["version"] == CURRENT_VERSION + ("-notify" if emails else "")


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("emails", RECIPIENTS, ids=["none", "one", "three"])
def test_check_prints_the_variant_a_run_would_use(
    emails: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(["check", "dev", f"vertex_ai.notify_emails=[{','.join(emails)}]", "--print"]) == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert_holds_notification(load(Path(printed["template"])), bool(emails))
    assert printed["parameter_values"].get("notify_emails") == (emails or None)


def publish(standin: RegistryStandIn, compiled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["dev", f"vertex_ai.template_registry={standin.url}", "--compiled-dir", str(compiled)]
    assert cli.main(["publish", *args]) == 0, capsys.readouterr().err
    capsys.readouterr()


@pytest.mark.usefixtures("project_env")
def test_publish_tags_both_variants(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(registry_standin, compiled_copy, capsys)
    entry = json.loads((compiled_copy / "manifest.json").read_text())["templates"][CURRENT_VERSION]
    for tags, recorded in (
        ([CURRENT_VERSION, "latest"], entry),
        ([f"{CURRENT_VERSION}-notify", "latest-notify"], entry["notify"]),
    ):
        digest = registry.file_digest(compiled_copy / recorded["file"])
        assert recorded["published"] == {registry_standin.url: digest}
        for tag in tags:
            assert registry.resolve(registry_standin.url, "rlhf-tuning", tag).digest == digest


@pytest.mark.usefixtures("project_env", "storage_emulator")
@pytest.mark.parametrize("ref", [CURRENT_VERSION, "latest"])
@pytest.mark.parametrize("emails", RECIPIENTS[:2], ids=["none", "one"])
def test_a_registry_version_runs_the_variant_the_addresses_ask_for(
    vertex: VertexStandIn,
    registry_standin: RegistryStandIn,
    compiled_copy: Path,
    capsys: pytest.CaptureFixture[str],
    ref: str,
    emails: list[str],
) -> None:
    publish(registry_standin, compiled_copy, capsys)
    wanted = submission.local_template(compiled_copy, notify=bool(emails))
    registry_standin.requests.clear()
    status = cli.main(
        [
            "submit",
            "dev",
            "--version",
            ref,
            "--compiled-dir",
            str(compiled_copy),
            *overrides(vertex, emails, f"vertex_ai.template_registry={registry_standin.url}"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    [create] = vertex.calls("POST")
    assert create["body"]["templateUri"].endswith(f"/rlhf-tuning/{wanted.digest}")
    assert_holds_notification(create["body"]["pipelineSpec"], bool(emails))
    tag = ref + ("-notify" if emails else "")
    assert ("GET", f"/packages/rlhf-tuning/tags/{tag}") in registry_standin.requests


@pytest.mark.parametrize(
    ("notify", "emails", "complaint"),
    [
        (False, ["ops@example.com"], "has no e-mail task, but vertex_ai.notify_emails lists"),
        (True, [], "needs vertex_ai.notify_emails (1 to 3 addresses)"),
        (False, [], None),
        (True, ["ops@example.com"], None),
    ],
    ids=["plain-with-addresses", "notify-without", "plain-without", "notify-with"],
)
def test_a_pinned_file_that_does_not_fit_the_addresses_is_refused(
    notify: bool, emails: list[str], complaint: str | None
) -> None:
    # A digest pinned by hand names one file: the signature check tells if it is the wrong one.
    path = submission.local_template(COMPILED, notify=notify).path
    assert path is not None
    values = {"preference_dataset": "gs://b/p", "prompt_dataset": "gs://b/q"}
    values["large_model_reference"] = "llama-2-7b"
    if emails:
        values["notify_emails"] = emails  # type: ignore[assignment]
    inputs = signature.template_inputs(path)
    if complaint is None:
        signature.check_against_signature(values, inputs, path.name)
        return
    with pytest.raises(ConfigError) as caught:
        signature.check_against_signature(values, inputs, path.name)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path.name}: ") and complaint in problem


@pytest.mark.parametrize("notify", [False, True])
def test_a_version_compiled_before_the_variants_is_one_file(notify: bool) -> None:
    # 1.1.1 always ends in the e-mail task (recipients default []); it is never rewritten.
    template = submission.local_template(COMPILED, "1.1.1", notify=notify)
    assert template.path == COMPILED / "rlhf-tuning-1.1.1.yaml"
    assert template.version == "1.1.1"
    assert notification_tasks(load(template.path)) == [NOTIFY_TASK]


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
    template = submission.local_template(COMPILED, notify=True).path
    assert template is not None
    signature.check_against_signature(values, signature.template_inputs(template), template.name)


def test_signature_check_refuses_a_non_list_for_a_list_input() -> None:
    template = submission.local_template(COMPILED, notify=True).path
    assert template is not None
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


# ---- the exit handler: what the monitor shows ----

EXIT_JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-7"


def _compiled_parents() -> dict[str, set[str | None]]:
    """task -> its parent tasks in the compiled template (names repeat across graphs;
    the root DAG task is the pipeline)."""
    # The stand-in runs the variant that e-mails (its tree holds the exit handler).
    notify = COMPILED / f"rlhf-tuning-{CURRENT_VERSION}-notify.yaml"
    spec = yaml.safe_load(notify.read_text(encoding="utf-8"))
    parents: dict[str, set[str | None]] = {"rlhf-tuning": {None}}

    def walk(dag: dict[str, Any], parent: str) -> None:
        for name, task in dag.get("tasks", {}).items():
            parents.setdefault(name, set()).add(parent)
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"], name)

    walk(spec["root"]["dag"], "rlhf-tuning")
    return parents


def test_the_stand_in_task_tree_is_the_compiled_one() -> None:
    compiled = _compiled_parents()
    for task, parent in TASK_PARENTS.items():
        assert parent in compiled.get(task, set()), task
    assert {"exit-handler-1", NOTIFY_TASK} <= set(TASK_PARENTS)


def _ended(tasks: dict[str, str | int], errors: dict[str, str]) -> list[Step]:
    return [
        Step(0, "PIPELINE_STATE_RUNNING", {"rlhf-tuning": "RUNNING"}),
        Step(
            600,
            "PIPELINE_STATE_FAILED",
            tasks,
            errors=errors,
            job_error="The DAG failed because some tasks failed.",
        ),
    ]


def test_the_body_failure_is_named_even_when_the_notification_failed_too(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    tasks: dict[str, str | int] = {
        NOTIFY_TASK: "FAILED",  # listed first: Vertex gives no order
        "rlhf-tuning": "FAILED",
        "validate-dataset": "FAILED",
        "validate-dataset-2": "SUCCEEDED",
    }
    errors = {NOTIFY_TASK: "permission denied sending mail", "validate-dataset": "row 3: choice"}
    vertex_on_fake_clock.add_job(EXIT_JOB, _ended(tasks, errors))
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(EXIT_JOB)
    assert status.failed_task == "validate-dataset"
    assert status.failed_stage == "validation"
    assert isinstance(monitor.final_error(status), DataError)
    assert status.stages["validation"] == "failed"


def test_a_notification_only_failure_says_the_run_itself_did_not_fail(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    done: dict[str, str | int] = {name: "SUCCEEDED" for name in TASK_PARENTS}
    done[NOTIFY_TASK] = "FAILED"
    vertex_on_fake_clock.add_job(EXIT_JOB, _ended(done, {NOTIFY_TASK: "invalid recipient"}))
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(EXIT_JOB)
    assert status.failed_task == NOTIFY_TASK
    assert set(status.stages.values()) == {"succeeded"}  # no stage of the work failed
    error = monitor.final_error(status)
    assert error is not None and "only the e-mail notification" in error.render()
    report = run_report.report(status)
    lines = [line for line in report.splitlines() if line.startswith("    ")]
    assert lines[-1].split()[0] == NOTIFY_TASK  # the exit task last
    # One column for the states, however long the task names are.
    columns = {line.index(line.split()[1], len(line.split()[0]) + 4) for line in lines}
    assert len(columns) == 1, report
