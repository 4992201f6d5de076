"""The components, through their Python functions and through kfp.local (SubprocessRunner).

kfp.local runs the component's shipped source in a subprocess, so these tests prove
that the functions shipped from vertex_rlhf are self-contained.
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import local

from components import validate_dataset as validate_dataset_module
from components.compute_steps import compute_steps
from components.validate_dataset import validate_dataset
from tests.conftest import SAMPLE_SETS, SAMPLES, write_jsonl
from vertex_rlhf.data import jsonl, matching, rules


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


# kfp runs a lightweight component as `sh -ec SCRIPT PROGRAM ...`: the whole Python
# program is ONE argv string, and Linux refuses any argv string over MAX_ARG_STRLEN
# (32 pages = 128 KiB) with "Argument list too long" before Python starts. 48 KiB keeps
# the shipped validator far from that wall.
ARGV_STRING_LIMIT = 48 << 10


def oversized_argv_strings(spec: dict[str, Any], limit: int = ARGV_STRING_LIMIT) -> list[str]:
    """Every executor's command or args string longer than ``limit`` bytes, named."""
    found = []
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        for part in ("command", "args"):
            for index, value in enumerate(container.get(part, [])):
                size = len(str(value).encode())
                if size > limit:
                    found.append(f"{name}: {part}[{index}] is {size:,} bytes")
    return found


def test_every_executor_string_of_the_template_being_written_stays_under_48_kib() -> None:
    from vertex_rlhf.template import compiler

    template = compiler.build_template()
    spec = yaml.safe_load(template.text)
    found = oversized_argv_strings(spec)
    assert not found, (
        f"template {template.version}: {'; '.join(found)}. kfp passes a component's program"
        " to `sh -c` as one argv string, and Linux caps one argv string at MAX_ARG_STRLEN"
        " (128 KiB: 'Argument list too long'); this project keeps each under"
        f" {ARGV_STRING_LIMIT >> 10} KiB. Ship less: only the row contract and the"
        " single-pass reader (vertex_rlhf/data/rules.py, jsonl.py, matching.py)."
    )
    validator = spec["deploymentSpec"]["executors"]["exec-validate-dataset"]["container"]
    assert len(validator["command"][-1].encode()) > 8 << 10  # the program is really there


@pytest.mark.parametrize(
    ("part", "size", "flagged"),
    [
        ("command", ARGV_STRING_LIMIT, False),
        ("command", ARGV_STRING_LIMIT + 1, True),
        ("args", ARGV_STRING_LIMIT + 1, True),
        ("args", 128 << 10, True),
        ("command", 10, False),
    ],
)
def test_an_executor_string_over_the_limit_is_named(part: str, size: int, flagged: bool) -> None:
    container = {"command": ["sh", "-ec", "x"], "args": ["--executor_input", "{}"]}
    container[part] = [*container[part], "é" * (size // 2) + "x" * (size % 2)]
    spec = {"deploymentSpec": {"executors": {"exec-big": {"container": container}}}}
    found = oversized_argv_strings(spec)
    assert found == (
        [f"exec-big: {part}[{len(container[part]) - 1}] is {size:,} bytes"] if flagged else []
    )


@pytest.mark.parametrize("module", [rules, jsonl, matching])
def test_the_shipped_modules_are_the_shipped_unit(module: types.ModuleType) -> None:
    """Every function of rules, jsonl and matching ships, and only those (with the
    catalog's name rule): an edit elsewhere in the library never rewrites a template."""
    defined = {
        value
        for value in vars(module).values()
        if inspect.isfunction(value) and value.__module__ == module.__name__
    }
    assert defined == set(module.SHIPPED)
    shipped = set(validate_dataset_module.SHIPPED)
    assert defined <= shipped
    assert {f.__module__ for f in shipped} == {
        "vertex_rlhf.config.catalog",
        "vertex_rlhf.data.rules",
        "vertex_rlhf.data.jsonl",
        "vertex_rlhf.data.matching",
    }
