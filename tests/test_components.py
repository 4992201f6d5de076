"""The components, through their Python functions and through kfp.local (SubprocessRunner).

kfp.local runs the component's shipped source in a subprocess, so these tests prove
that the functions shipped from vertex_rlhf are self-contained.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import local

from components.compute_steps import compute_steps
from components.validate_dataset import validate_dataset
from tests.conftest import SAMPLE_SETS, SAMPLES, write_jsonl


@pytest.fixture(scope="module")
def kfp_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("kfp-local")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    yield


def test_validate_python_function_on_samples() -> None:
    stats = validate_dataset.python_func(
        kind="preference", dataset=str(SAMPLES / "preference.jsonl")
    )
    assert (stats.rows, stats.layout) == (160, "text")


def test_validate_python_function_without_eval_dataset() -> None:
    assert validate_dataset.python_func(kind="eval", dataset=None).rows == 0
    with pytest.raises(ValueError, match="the prompt dataset is required"):
        validate_dataset.python_func(kind="prompt", dataset="")


def test_steps_python_function_worked_example() -> None:
    out = compute_steps.python_func(
        preference_rows=3000,
        prompt_rows=2000,
        reward_model_epochs=30,
        reinforcement_learning_epochs=10,
    )
    assert (out.reward_model_train_steps, out.reinforcement_learning_train_steps) == (1410, 320)


@pytest.mark.usefixtures("kfp_local")
@pytest.mark.parametrize(("name", "kind", "rows", "layout"), SAMPLE_SETS)
def test_validate_runs_in_kfp_local(name: str, kind: str, rows: int, layout: str) -> None:
    task = validate_dataset(kind=kind, dataset=str(SAMPLES / name))
    assert task.outputs == {"rows": rows, "layout": layout}


@pytest.mark.usefixtures("kfp_local")
def test_validate_in_kfp_local_reads_a_glob(tmp_path: Path) -> None:
    for i in range(3):
        write_jsonl(tmp_path / f"part-{i}.jsonl", [json.dumps({"input_text": "x"})] * (i + 1))
    task = validate_dataset(kind="prompt", dataset=str(tmp_path / "part-*.jsonl"))
    assert task.outputs["rows"] == 6


@pytest.mark.usefixtures("kfp_local")
def test_bad_sample_fails_the_task_with_file_line_and_field(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    good = (SAMPLES / "preference.jsonl").read_text(encoding="utf-8").splitlines()
    bad_row = json.loads(good[1])
    bad_row["choice"] = "1"
    path = write_jsonl(tmp_path / "bad.jsonl", [good[0], json.dumps(bad_row), *good[2:]])
    with pytest.raises(RuntimeError, match="FAILURE"):
        validate_dataset(kind="preference", dataset=str(path))
    output = capfd.readouterr()
    text = output.out + output.err
    assert f'{path}:2: choice: must be the integer 0 or 1, got string "1"' in text
    assert "1 problem(s)" in text


@pytest.mark.usefixtures("kfp_local")
def test_empty_glob_fails_the_task(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="FAILURE"):
        validate_dataset(kind="prompt", dataset=str(tmp_path / "nothing-*.jsonl"))
    output = capfd.readouterr()
    assert "matches no files" in output.out + output.err


@pytest.mark.usefixtures("kfp_local")
def test_steps_run_in_kfp_local(capfd: pytest.CaptureFixture[str]) -> None:
    task = compute_steps(
        preference_rows=500,
        prompt_rows=2000,
        reward_model_epochs=30,
        reinforcement_learning_epochs=10,
        reinforcement_learning_train_steps=99,
    )
    assert task.outputs == {
        "reward_model_train_steps": 8 * 30,
        "reinforcement_learning_train_steps": 99,
    }
    output = capfd.readouterr()
    assert "WARNING: only 500 preference pairs" in output.out + output.err


@pytest.mark.usefixtures("kfp_local")
def test_steps_fail_on_zero_epochs() -> None:
    with pytest.raises(RuntimeError, match="FAILURE"):
        compute_steps(
            preference_rows=500,
            prompt_rows=2000,
            reward_model_epochs=0,
            reinforcement_learning_epochs=10,
        )
