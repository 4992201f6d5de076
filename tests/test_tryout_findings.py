"""Findings of trying the project as a new user would, on inputs no other test used."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import vertex_rlhf.original.layout as legacy
from tests.conftest import REPO, TEST_PROJECT, FakeClock
from tests.standins.vertex import TASK_PARENTS, Step, VertexStandIn
from tests.test_monitor import watcher
from tests.test_plan import TEMPLATE, build
from vertex_rlhf.cloud import monitor
from vertex_rlhf.config.environment import ENV_NAME, resolve_environment
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError, DataError
from vertex_rlhf.views import run_report
from vertex_rlhf.views.plan import render_plan

# The seed's own development config, saved under the names users give such files.
SEED_DEVELOPMENT = """\
dataset:
  preference_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/summarize_from_feedback_tfds/comparisons/train/*.jsonl"
  prompt_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/reddit_tfds/train/*.jsonl"
  eval_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/reddit_tfds/val/*.jsonl"
  preference_size: 3000
  prompt_size: 2000

training:
  reward_model_train_steps: 1410
  reinforcement_learning_train_steps: 320
"""


def seed_main(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "main.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


@pytest.mark.parametrize(
    "file_name",
    [
        "base_config.yaml",  # the seed's own name: 'base' is reserved
        "base.yml",
        "2024_config.yaml",
        "my config.yaml",
        "prodé_config.yaml",
        "___.yaml",
        "a" * 80 + "_config.yaml",
        "config.yaml",
    ],
)
def test_original_file_names_give_a_valid_environment_name(file_name: str) -> None:
    name = legacy.default_env_name(f"configs/{file_name}")
    assert ENV_NAME.match(name) and name != "base", name


@pytest.mark.parametrize("where", ["repo", "elsewhere"])
def test_seed_calculate_steps_with_base_config(where: str, tmp_path: Path) -> None:
    """`python main.py --config configs/base_config.yaml --calculate-steps`, as the seed
    writes it, from the checkout and from a project folder of the user's."""
    cwd = tmp_path
    (cwd / "configs").mkdir()
    config = cwd / "configs" / "base_config.yaml"
    config.write_text(SEED_DEVELOPMENT, encoding="utf-8")
    if where == "repo":
        cwd = REPO
    result = seed_main("--config", str(config), "--calculate-steps", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert (
        "TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)" in result.stdout
    )


# --- the exit handler: what the monitor and the plan show ----------------------------------

NOTIFY = "vertex-pipelines-notification-email"
JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-7"


def _compiled_parents() -> dict[str, set[str | None]]:
    """task -> its parent tasks in the compiled template (names repeat across graphs;
    the root DAG task is the pipeline)."""
    # The stand-in runs the variant that e-mails (its tree holds the exit handler).
    notify = TEMPLATE.with_name(TEMPLATE.name.replace(".yaml", "-notify.yaml"))
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
    assert {"exit-handler-1", NOTIFY} <= set(TASK_PARENTS)


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
        NOTIFY: "FAILED",  # listed first: Vertex gives no order
        "rlhf-tuning": "FAILED",
        "validate-dataset": "FAILED",
        "validate-dataset-2": "SUCCEEDED",
    }
    errors = {NOTIFY: "permission denied sending mail", "validate-dataset": "row 3: choice"}
    vertex_on_fake_clock.add_job(JOB, _ended(tasks, errors))
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(JOB)
    assert status.failed_task == "validate-dataset"
    assert status.failed_stage == "validation"
    assert isinstance(monitor.final_error(status), DataError)
    assert status.stages["validation"] == "failed"


def test_a_notification_only_failure_says_the_run_itself_did_not_fail(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    done: dict[str, str | int] = {name: "SUCCEEDED" for name in TASK_PARENTS}
    done[NOTIFY] = "FAILED"
    vertex_on_fake_clock.add_job(JOB, _ended(done, {NOTIFY: "invalid recipient"}))
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(JOB)
    assert status.failed_task == NOTIFY
    assert set(status.stages.values()) == {"succeeded"}  # no stage of the work failed
    error = monitor.final_error(status)
    assert error is not None and "only the e-mail notification" in error.render()
    report = run_report.report(status)
    lines = [line for line in report.splitlines() if line.startswith("    ")]
    assert lines[-1].split()[0] == NOTIFY  # the exit task last
    # One column for the states, however long the task names are.
    columns = {line.index(line.split()[1], len(line.split()[0]) + 4) for line in lines}
    assert len(columns) == 1, report


@pytest.mark.usefixtures("project_env")
def test_plan_shows_tasks_without_wrapper_dags_in_aligned_columns() -> None:
    built = build("dev", "vertex_ai.notify_emails=[ops@example.com]")
    text = render_plan(built)
    described = built.as_dict()["cache"]  # what a dry run prints
    assert "reward-model-graph/reward-model-trainer" in described
    assert not any(w in key for key in described for w in ("exit-handler-", "condition-"))
    cache = text.split("  cache:\n", 1)[1].splitlines()
    assert not any(w in text for w in ("exit-handler-", "rlhf-train-template/", "condition-"))
    assert any(line.split()[0] == "reward-model-graph/reward-model-trainer" for line in cache)
    assert any(line.split()[0] == NOTIFY for line in cache)
    columns = {re.search(r"  (always runs|reused if)", line).start() for line in cache}  # type: ignore[union-attr]
    assert len(columns) == 1, "\n".join(cache)


# --- whole numbers Vertex AI cannot carry ---------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "dataset.preference_size",
        "dataset.prompt_size",
        "training.reward_model_epochs",
        "training.reinforcement_learning_epochs",
        "training.reward_model_train_steps",
        "training.reinforcement_learning_train_steps",
    ],
)
@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999999999"])
@pytest.mark.usefixtures("project_env")
def test_integers_beyond_what_vertex_carries_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_params("local", [f"{key}={value}"], REPO / "params")
    assert f"{key}: {value} is too large" in raised.value.render()
    assert raised.value.exit_status == 12


@pytest.mark.usefixtures("project_env")
def test_the_largest_exact_integer_is_still_accepted() -> None:
    key = "training.reward_model_train_steps"
    params = load_params("local", [f"{key}={2**53 - 1}"], REPO / "params")
    assert params.training.reward_model_train_steps == 2**53 - 1


# --- environment arguments ------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["dev.yaml", "prod.yml"])
def test_a_bare_file_name_suggests_the_environment_meant(
    typed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not where params/ is: the project is found from the package
    with pytest.raises(ConfigError) as raised:
        resolve_environment(typed)
    stem = typed.split(".")[0]
    assert f"did you mean `{stem}`" in raised.value.render()
    assert raised.value.exit_status == 12


def test_no_suggestion_for_a_name_that_is_not_an_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_environment("nosuchenv.yaml")
    assert "did you mean" not in raised.value.render()


# --- the original Python API: counts are whole numbers, never rounded -----------------------


@pytest.mark.parametrize(
    ("sizes", "argument"),
    [
        ((3000.5, 2000), "preference_dataset_size"),
        ((True, 2000), "preference_dataset_size"),
        ((3000, "2k"), "prompt_dataset_size"),
        ((-1, 2000), "preference_dataset_size"),
        ((3000, 2000, 2.5), "reward_epochs"),
        ((10**30, 2000), "preference_dataset_size"),
        ((3000, None), "prompt_dataset_size"),
    ],
)
def test_training_calculator_refuses_counts_it_would_have_to_round(
    sizes: tuple[Any, ...], argument: str
) -> None:
    from vertex_rlhf import TrainingCalculator

    calculator = TrainingCalculator()
    with pytest.raises(ConfigError, match=f"training steps: {argument} must be a whole number"):
        calculator.calculate_training_steps(*sizes)
    ok, message = calculator.validate_training_parameters(*sizes)
    # validate_training_parameters names them as the seed does: preference_size, ...
    assert not ok and message.startswith(f"{argument.replace('_dataset', '')} must be a whole")


def test_training_calculator_takes_whole_numbers_in_any_spelling() -> None:
    from vertex_rlhf import TrainingCalculator, TrainingSteps

    expected = TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)
    assert TrainingCalculator().calculate_training_steps(3000.0, "2000") == expected


# --- parameter files too large to be parameter files ----------------------------------------


@pytest.mark.parametrize("shape", ["many keys", "alias bomb"])
def test_a_huge_parameter_file_is_refused_without_advice_to_raise_limits(
    shape: str, tmp_path: Path
) -> None:
    if shape == "many keys":
        text = "training:\n" + "".join(f"  k{i}: {i}\n" for i in range(20000))
    else:
        text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 7)
        )
    (tmp_path / "base.yaml").write_text("{}\n", encoding="utf-8")
    (tmp_path / "huge.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_params("huge", [], tmp_path)
    message = raised.value.render()
    assert "huge.yaml: too large" in message and "remove repeated or aliased" in message
    assert "max_yaml_expanded_nodes" not in message
    assert raised.value.exit_status == 12


# --- what a parameter or original config file may be, whichever reader opens it -------------


def _not_utf8(text: str) -> bytes:
    return text.encode("utf-16")


def _huge(text: str) -> bytes:
    return (text + "  instruction: '" + "x" * (2 * 1024 * 1024) + "'\n").encode("utf-8")


@pytest.mark.parametrize(
    ("make", "expected"),
    [(_not_utf8, ":1: not valid UTF-8"), (_huge, ": too large: more than 1024 KB")],
)
@pytest.mark.parametrize("layout", ["original", "params"])
def test_unreadable_config_files_are_coded_errors_in_every_reader(
    make: Any, expected: str, layout: str, tmp_path: Path
) -> None:
    if layout == "original":  # scripts/main.py reads it through the original-layout loader
        config = tmp_path / "configs" / "production_config.yaml"
        text = SEED_DEVELOPMENT
    else:
        config = tmp_path / "params" / "team.yaml"
        (tmp_path / "params").mkdir()
        (tmp_path / "params" / "base.yaml").write_text("{}\n", encoding="utf-8")
        text = "training:\n  kl_coeff: 0.2\n"
    config.parent.mkdir(exist_ok=True)
    config.write_bytes(make(text))
    result = seed_main("--config", str(config), "--calculate-steps", cwd=REPO)
    assert result.returncode == 12, result.stderr
    assert f"error[CONFIG_002]: {config}{expected}" in result.stderr
    assert "Traceback" not in result.stderr
