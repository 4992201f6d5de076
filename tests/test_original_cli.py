"""scripts/main.py: the original description's command line, every flag and path.

Cloud paths run in-process against the Vertex AI stand-in and the storage emulator, in a
scratch folder holding copies of params/ and compiled/ (run logs land there too).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import CURRENT_VERSION, REPO, SAMPLES, TEST_PROJECT, write_jsonl
from tests.standins.vertex import (
    VertexStandIn,
    scale,
    timeline_success,
    timeline_training_failure,
)
from tests.test_legacy_config import PRODUCTION
from vertex_rlhf import cli

SEED_LINE = (
    "Optimal training steps:"
    " TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)"
)
SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
INSTANT = 1e-6


def load_main() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_main", REPO / "scripts" / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAIN = load_main()


def script(*args: str, python: tuple[str, ...] = (sys.executable,), **env: str):  # type: ignore[no-untyped-def]
    # No project, and no storage emulator another test may have started in this process.
    unset = ("GOOGLE_CLOUD_PROJECT", "STORAGE_EMULATOR_HOST")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ.update(env)
    return subprocess.run(
        [*python, str(REPO / "scripts" / "main.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=120,
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "params", tmp_path / "params")
    shutil.copytree(REPO / "compiled", tmp_path / "compiled")
    shutil.copytree(SAMPLES, tmp_path / "samples")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def standin_params(workdir: Path, vertex: VertexStandIn, **dataset: str) -> Path:
    """params/standin.yaml: the dev environment pointed at the stand-in."""
    values = yaml.safe_load((workdir / "params" / "dev.yaml").read_text(encoding="utf-8"))
    values["dataset"].update(dataset)
    values["vertex_ai"].update(
        project_id=TEST_PROJECT,
        api_endpoint=vertex.url,
        service_account=SERVICE_ACCOUNT,
        pipeline_root=f"gs://rlhf-test-{uuid.uuid4().hex[:12]}/root",
    )
    path = workdir / "params" / "standin.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


# --calculate-steps


def test_calculate_steps_prints_the_original_line_exactly() -> None:
    result = script("--config", "params/dev.yaml", "--calculate-steps")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [SEED_LINE]


def test_explicit_steps_are_not_called_optimal() -> None:
    result = script("--config", "params/prod.yaml", "--calculate-steps")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Training steps (explicit in the parameters, not computed):"
        " TrainingSteps(reward_model_steps=10000, reinforcement_learning_steps=10000)"
    ]


def test_one_explicit_step_count_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["steps", "dev", "training.reward_model_train_steps=500"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Training steps (training.reward_model_train_steps explicit, the other computed):"
        " TrainingSteps(reward_model_steps=500, reinforcement_learning_steps=320)"
    ]


def test_an_original_layout_config_is_read_and_explained(tmp_path: Path) -> None:
    config = tmp_path / "configs" / "production_config.yaml"
    config.parent.mkdir()
    config.write_text(PRODUCTION, encoding="utf-8")
    result = script("--config", str(config), "--calculate-steps")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Training steps (explicit in the parameters, not computed):"
        " TrainingSteps(reward_model_steps=10000, reinforcement_learning_steps=8000)"
    ]
    assert "the original description's layout, read as params/production.yaml" in result.stderr
    assert "vertex_ai.staging_bucket: became vertex_ai.pipeline_root" in result.stderr
    assert "training.batch_size: dropped" in result.stderr
    assert f"`rlhf migrate-config {config}` writes it to params/ for good" in result.stderr
    config.write_text(PRODUCTION.replace("batch_size: 64", "batch_size: 16"), encoding="utf-8")
    result = script("--config", str(config), "--calculate-steps")
    assert result.returncode == 12 and result.stdout == ""
    assert result.stderr.startswith(f"error[CONFIG_002]: {config}:17: training.batch_size: 16")
    assert "Traceback" not in result.stderr


# Without the project's packages


def test_a_python_without_the_packages_says_how_to_set_up() -> None:
    # -S: no site-packages, so neither the venv's packages nor the project are importable.
    result = script(
        "--config", "params/dev.yaml", "--calculate-steps", python=(sys.executable, "-S")
    )
    assert result.returncode == 3
    assert "ModuleNotFoundError" not in result.stderr and "Traceback" not in result.stderr
    assert "lacks the project's packages (vertex_rlhf, omegaconf" in result.stderr
    assert f"{REPO}/.venv/bin/python" in result.stderr
    assert "--config params/dev.yaml --calculate-steps" in result.stderr


def test_without_a_virtualenv_it_says_make_setup(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copyfile(REPO / "scripts" / "main.py", tmp_path / "scripts" / "main.py")
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(tmp_path / "scripts" / "main.py"), "--config", "x.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert f"fix: cd {tmp_path} && make setup" in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_are_checked_by_argparse() -> None:
    both = script("--config", "params/dev.yaml", "--validate", "--wait")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert script("--calculate-steps").returncode == 2


# --validate


def test_validate_checks_local_datasets(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert MAIN.run(["--config", "params/local.yaml", "--validate"]) == 0
    out, err = capsys.readouterr()
    assert f"params/local.yaml: valid for rlhf-tuning-{CURRENT_VERSION}.yaml" in err
    assert "preference dataset" in out and "160 rows in 1 file(s), layout text: valid" in out


def test_validate_finds_bad_rows(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = (SAMPLES / "prompt.jsonl").read_text(encoding="utf-8").splitlines()
    bad = write_jsonl(workdir / "prompts.jsonl", [*rows[:2], '{"input_text": ""}'])
    local = (workdir / "params" / "local.yaml").read_text(encoding="utf-8")
    (workdir / "params" / "local.yaml").write_text(
        local.replace("samples/prompt.jsonl", str(bad)), encoding="utf-8"
    )
    assert MAIN.run(["--config", "params/local.yaml", "--validate"]) == 15
    captured = capsys.readouterr()  # the parameter check counts local rows: the error says it
    assert f"{bad}:3: input_text: must not be empty" in captured.out + captured.err


def test_validate_an_invalid_parameter_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "params" / "broken.yaml"
    path.write_text("training:\n  kl_coef: 0.1\n", encoding="utf-8")
    assert MAIN.run(["--config", str(path), "--validate"]) == 12
    assert f"{path}:2: training.kl_coef: unknown key" in capsys.readouterr().err


def test_validate_gs_data_without_credentials_says_where_to_check(tmp_path: Path) -> None:
    environ = {
        "HOME": str(tmp_path),
        "GOOGLE_APPLICATION_CREDENTIALS": "",
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
    }
    result = script("--config", "params/dev.yaml", "--validate", **environ)
    assert result.returncode == 0, result.stderr
    assert "params/dev.yaml: valid for" in result.stderr
    assert "datasets not checked: Cloud Storage is not reachable" in result.stderr
    assert "run `make validate-data ENV=params/dev.yaml` where it is" in result.stderr


def test_validate_gs_data_where_reachable(
    workdir: Path, storage_emulator: str, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = storage.Client(project=TEST_PROJECT, credentials=AnonymousCredentials()).create_bucket(
        f"rlhf-data-{uuid.uuid4().hex[:8]}"
    )
    for name in ("preference", "prompt", "eval"):
        bucket.blob(f"{name}.jsonl").upload_from_filename(SAMPLES / f"{name}.jsonl")
    config = standin_params(
        workdir,
        vertex,
        preference_dataset=f"gs://{bucket.name}/preference.jsonl",
        prompt_dataset=f"gs://{bucket.name}/prompt.jsonl",
        eval_dataset=f"gs://{bucket.name}/eval.jsonl",
    )
    assert MAIN.run(["--config", str(config), "--validate"]) == 0
    out = capsys.readouterr().out
    assert f"preference dataset gs://{bucket.name}/preference.jsonl: 160 rows" in out
    assert vertex.requests == []  # validation books nothing


# --monitor


def test_monitor_follows_a_job_to_its_end(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    job = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-7"
    vertex.add_job(job, scale(timeline_success(), INSTANT))
    config = standin_params(workdir, vertex)
    assert MAIN.run(["--config", str(config), "--monitor", "rlhf-tuning-dev-7"]) == 0
    out = capsys.readouterr().out
    assert f"Pipeline job {job}: SUCCEEDED (100%" in out
    assert (workdir / "runs" / "rlhf-tuning-dev-7.jsonl").is_file()
    assert MAIN.run(["--config", str(config), "--monitor", job]) == 0  # full resource name


def test_monitor_a_bad_job_id(workdir: Path, vertex: VertexStandIn, capsys) -> None:  # type: ignore[no-untyped-def]
    config = standin_params(workdir, vertex)
    assert MAIN.run(["--config", str(config), "--monitor", "../etc/passwd"]) == 12
    assert "is neither a job id" in capsys.readouterr().err
    assert vertex.requests == []


# Submit: no flag, --wait


@pytest.mark.usefixtures("storage_emulator")
def test_no_flag_submits_the_compiled_template(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    config = standin_params(workdir, vertex)
    assert MAIN.run(["--config", str(config)]) == 0
    out, err = capsys.readouterr()
    [create] = vertex.calls("POST")
    assert create["body"]["labels"]["environment"] == "standin"
    assert out.startswith(f"Submitted projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/")
    assert "follow it with: make monitor JOB=" in out
    assert "stale" not in err


@pytest.mark.usefixtures("storage_emulator")
@pytest.mark.parametrize("fails", [False, True])
def test_wait_follows_the_run_and_exits_by_its_end(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str], fails: bool
) -> None:
    timeline = (
        timeline_training_failure("The replica workerpool0-0 ran out of memory (OOM).")
        if fails
        else timeline_success()
    )
    vertex.next_timeline = scale(timeline, INSTANT)
    status = MAIN.run(["--config", str(standin_params(workdir, vertex)), "--wait"])
    out, err = capsys.readouterr()
    if fails:
        assert status == 14
        assert err.startswith("error[TRAINING_004]: projects/")
        assert "failed task: reward-model-trainer (reward model)" in out
    else:
        assert status == 0, err
        assert "SUCCEEDED (100%" in out
    assert len(vertex.calls("POST")) == 1


@pytest.mark.usefixtures("storage_emulator")
def test_a_stale_compiled_dir_is_recompiled_with_a_notice(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    template = workdir / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
    stale = template.read_text(encoding="utf-8") + "# edited by hand\n"
    template.write_text(stale, encoding="utf-8")
    config = standin_params(workdir, vertex)
    assert MAIN.run(["--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert f"notice: compiled/ is stale (compiled/rlhf-tuning-{CURRENT_VERSION}.yaml" in err
    assert "Run `make compile` and commit compiled/" in err
    assert template.read_text(encoding="utf-8") == stale  # compiled/ is left alone
    [create] = vertex.calls("POST")
    fresh = yaml.safe_load((REPO / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml").read_text())
    assert create["body"]["pipelineSpec"]["root"] == fresh["root"]


@pytest.mark.usefixtures("storage_emulator")
def test_an_original_layout_config_is_submitted(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    config = PRODUCTION.replace('"your-project-id"', f'"{TEST_PROJECT}"').replace(
        '"gs://your-project-rlhf-staging"', f'"gs://rlhf-test-{uuid.uuid4().hex[:12]}"'
    )
    config += f'  api_endpoint: "{vertex.url}"\n  service_account: "{SERVICE_ACCOUNT}"\n'
    path = workdir / "configs" / "production_config.yaml"
    path.parent.mkdir()
    path.write_text(config, encoding="utf-8")
    assert MAIN.run(["--config", "configs/production_config.yaml"]) == 0
    err = capsys.readouterr().err
    assert "vertex_ai.staging_bucket: became vertex_ai.pipeline_root" in err
    [create] = vertex.calls("POST")
    body = create["body"]
    assert body["labels"]["environment"] == "production"
    assert body["runtimeConfig"]["gcsOutputDirectory"].startswith("gs://rlhf-test-")
    assert body["runtimeConfig"]["parameterValues"]["reinforcement_learning_train_steps"] == 8000
    assert sorted(p.name for p in (workdir / "params").iterdir()) == sorted(
        p.name for p in (REPO / "params").iterdir()
    )  # nothing written into params/


# --health-check


def test_health_check_runs_the_doctor_or_says_what_replaces_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = MAIN.run(["--config", "params/dev.yaml", "--health-check"])
    if "doctor" in cli.subcommands():  # after the merge with `rlhf doctor`
        assert status in (0, 11, 12, 13, 14, 15)
        assert "credentials" in capsys.readouterr().out  # the doctor's own report
        return
    assert status == 12
    assert capsys.readouterr().err == (
        "error[CONFIG_002]: --health-check: not available in this version;"
        " `make doctor ENV=dev` (`rlhf doctor ENV`) replaces it\n"
    )


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


@pytest.mark.parametrize("where", ["repo", "elsewhere"])
def test_calculate_steps_reads_the_seeds_config_from_the_checkout_or_elsewhere(
    where: str, tmp_path: Path
) -> None:
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
