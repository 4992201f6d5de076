"""The CLI end to end, as a user runs it: output, exit status, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CURRENT_VERSION, REPO, SAMPLES, TEST_PROJECT, write_jsonl

SEED_LINE = (
    "Optimal training steps:"
    " TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)"
)


def run(*args: str, project: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    if project:
        environ["GOOGLE_CLOUD_PROJECT"] = project
    environ.update(env)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=120,
    )


def rlhf(*args: str, **kwargs: str) -> subprocess.CompletedProcess[str]:
    return run("-m", "vertex_rlhf", *args, **kwargs)


def test_steps_for_dev_prints_the_seed_line_without_any_credentials() -> None:
    result = rlhf("steps", "dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [SEED_LINE]
    assert "3000 rows declared by dataset.preference_size" in result.stderr


def test_seed_compatible_entry_point() -> None:
    result = run("scripts/main.py", "--config", "params/dev.yaml", "--calculate-steps")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [SEED_LINE]


def test_steps_for_local_count_the_shipped_samples() -> None:
    result = rlhf("steps", "local")
    assert result.returncode == 0, result.stderr
    # 160 preference rows -> 3 batches x 30 epochs; 100 prompts -> 2 x 10
    assert result.stdout.strip() == (
        "Optimal training steps:"
        " TrainingSteps(reward_model_steps=90, reinforcement_learning_steps=20)"
    )
    assert "warning: only 160 preference pairs" in result.stderr


def test_steps_with_explicit_override() -> None:
    result = rlhf("steps", "dev", "training.reinforcement_learning_train_steps=77")
    assert "reinforcement_learning_steps=77)" in result.stdout


def test_typo_gives_a_coded_error_and_no_traceback() -> None:
    result = rlhf("steps", "dev", "training.kl_coef=0.2")
    assert result.returncode == 12
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error[CONFIG_002]: command-line override: training.kl_coef: unknown key"
        " (did you mean 'kl_coeff'?)"
    )
    assert "Traceback" not in result.stderr


def test_debug_log_level_shows_the_traceback() -> None:
    result = rlhf("steps", "dev", "training.kl_coef=0.2", LOG_LEVEL="DEBUG")
    assert result.returncode == 12
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_bad_local_dataset_is_a_data_error_with_file_and_line(tmp_path: Path) -> None:
    rows = (SAMPLES / "prompt.jsonl").read_text(encoding="utf-8").splitlines()
    bad = write_jsonl(tmp_path / "prompts.jsonl", [*rows[:4], '{"input_text": ""}', *rows[4:]])
    result = rlhf("steps", "local", f"dataset.prompt_dataset={bad}")
    assert result.returncode == 15
    assert f"\nerror[DATA_005]: prompt dataset {bad}: 101 rows in 1 file(s): 1 problem(s)\n" in (
        result.stderr
    )
    assert f"{bad}:5: input_text: must not be empty or only whitespace" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_row_count_for_gs_data_says_what_to_set() -> None:
    result = rlhf("steps", "dev", "dataset.prompt_size=null")
    assert result.returncode == 12
    assert "dataset.prompt_size: not set" in result.stderr


def test_check_prints_the_resolved_values() -> None:
    result = rlhf("check", "dev", "training.kl_coeff=0.25", "--print", project=TEST_PROJECT)
    assert result.returncode == 0, result.stderr
    assert "kl_coeff: 0.25" in result.stdout
    assert f"template: compiled/rlhf-tuning-{CURRENT_VERSION}.yaml" in result.stdout
    assert f"params/dev.yaml: valid for rlhf-tuning-{CURRENT_VERSION}.yaml" in result.stderr


def test_check_without_a_compiled_template(tmp_path: Path) -> None:
    result = rlhf("check", "dev", "--compiled-dir", str(tmp_path), project=TEST_PROJECT)
    assert result.returncode == 13
    assert result.stderr.startswith(f"error[PIPELINE_003]: no compiled template in {tmp_path}/")
    assert "fix: run `make compile`" in result.stderr


def test_compile_check_fails_on_a_stale_directory(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"templates": {}}), encoding="utf-8")
    result = rlhf("compile", "--check", "--compiled-dir", str(tmp_path))
    assert result.returncode == 13
    assert "compiled/ is stale" in result.stderr and "is missing" in result.stderr


HEAVY = ("google.cloud.aiplatform", "google_cloud_pipeline_components", "kfp")


@pytest.mark.parametrize("command", [["steps", "dev"], ["check", "dev"]])
def test_fast_commands_import_no_cloud_sdk(command: list[str]) -> None:
    probe = (
        "import sys\n"
        "from vertex_rlhf.cli import main\n"
        f"status = main({command!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
        f" or m.startswith({HEAVY[0]!r}))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(status)\n"
    )
    result = run("-c", probe, project=TEST_PROJECT)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_make_help_lists_every_target() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "help"], capture_output=True, text=True, cwd=REPO
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert targets == listed
