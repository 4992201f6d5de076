"""The components' shipped code, run as Vertex runs it, where vertex_rlhf cannot be imported.

kfp.local runs a component with this project importable, so a shipped function that
imports ``vertex_rlhf`` (or anything of ours) at run time passes there and fails on
GCPC's image. Here the container command's program (from the compiled template, and
from the component as the sources build it now) runs through kfp's own
``executor_main`` in ``python -I -S``: no site processing (so no editable finder for
this project), site-packages appended by hand for kfp alone, a temporary working
directory, and an import hook that refuses our packages outright. The same runs
are repeated with orjson refused, as on an image without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CURRENT_VERSION, REPO, RUN_MARK, SAMPLE_SETS, SAMPLES, write_jsonl

TEMPLATE = REPO / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml"

# Runs in the isolated interpreter: argv = [refused packages (comma-separated),
# site-packages, executor_main's arguments...].
BOOT = """
import sys
refused = set(sys.argv[1].split(","))
sys.path.append(sys.argv[2])  # site-packages without its .pth files


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in refused:
            raise ImportError("refused in this test: " + name)
        return None


sys.meta_path.insert(0, Refuse())
sys.argv = ["executor_main", *sys.argv[3:]]
import runpy

runpy.run_module("kfp.dsl.executor_main", run_name="__main__", alter_sys=True)
"""

OURS = "vertex_rlhf,components,pipelines,tests"
REFUSALS = {"ours": OURS, "ours-and-orjson": OURS + ",orjson"}


def compiled_program(executor: str) -> str:
    """The program text the compiled template's container writes to a file and runs."""
    spec = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    command = spec["deploymentSpec"]["executors"][executor]["container"]["command"]
    assert "executor_main" in command[-2], command
    return str(command[-1])


def source_program(component: str) -> str:
    """The program text the component as defined in components/ ships now."""
    from components.compute_steps import compute_steps
    from components.validate_dataset import validate_dataset

    built = {"validate_dataset": validate_dataset, "compute_steps": compute_steps}[component]
    container = built.component_spec.implementation.container
    return str(container.command[-1])


def run_isolated(
    program: str, function: str, inputs: dict[str, Any], outputs: list[str], tmp: Path, refuse: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Runs one component function as its container would, with our packages refused.

    Returns:
        The finished process and the output parameters it wrote (name -> value).
    """
    work = tmp / "work"
    work.mkdir()
    module = work / "ephemeral_component.py"
    module.write_text(program, encoding="utf-8")
    out_dir = tmp / "outputs"
    out_dir.mkdir()
    executor_input = {
        "inputs": {"parameterValues": inputs},
        "outputs": {
            "parameters": {name: {"outputFile": str(out_dir / name)} for name in outputs},
            "outputFile": str(out_dir / "executor_output.json"),
        },
    }
    args = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        BOOT,
        refuse,
        sysconfig.get_paths()["purelib"],
        "--component_module_path",
        str(module),
        "--executor_input",
        json.dumps(executor_input),
        "--function_to_execute",
        function,
    ]
    done = subprocess.run(
        args,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "_KFP_RUNTIME": "true",
            "LANG": "C.UTF-8",
            RUN_MARK: os.environ.get(RUN_MARK, ""),  # counted by the leftover check
        },
        stdin=subprocess.DEVNULL,
    )
    result = out_dir / "executor_output.json"
    written: dict[str, Any] = {}
    if result.exists():
        written = json.loads(result.read_text(encoding="utf-8")).get("parameterValues", {})
    return done, written


PROGRAMS = {
    "compiled": lambda executor, component: compiled_program(executor),
    "sources": lambda executor, component: source_program(component),
}


@pytest.fixture(params=sorted(PROGRAMS))
def origin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(REFUSALS))
def refuse(request: pytest.FixtureRequest) -> str:
    return REFUSALS[str(request.param)]


def test_the_isolated_interpreter_cannot_import_the_project(tmp_path: Path) -> None:
    # The harness itself: a program that imports vertex_rlhf must fail in it.
    program = (
        "import kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n\n"
        "def probe() -> str:\n"
        "    import vertex_rlhf\n"
        "    return vertex_rlhf.__name__\n"
    )
    done, written = run_isolated(program, "probe", {}, ["Output"], tmp_path, OURS)
    assert done.returncode != 0 and "ModuleNotFoundError" not in done.stderr
    assert "ImportError: refused in this test: vertex_rlhf" in done.stderr, done.stderr
    assert written == {}


@pytest.mark.parametrize(("name", "kind", "rows", "layout"), SAMPLE_SETS)
def test_validate_dataset_runs_without_the_project(
    origin: str, refuse: str, tmp_path: Path, name: str, kind: str, rows: int, layout: str
) -> None:
    data = tmp_path / "data" / name
    data.parent.mkdir()
    shutil.copy(SAMPLES / name, data)
    program = PROGRAMS[origin]("exec-validate-dataset", "validate_dataset")
    inputs = {
        "kind": kind,
        "dataset": str(data),
        "max_reported": 5,
        "large_model_reference": "",
        "model_layouts": {},
        "job_uuid": "",
    }
    done, written = run_isolated(
        program, "validate_dataset", inputs, ["rows", "layout"], tmp_path, refuse
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert written == {"rows": rows, "layout": layout}
    assert f"{rows} rows in 1 file(s), layout {layout}: valid" in done.stdout


def test_validate_dataset_fails_the_task_without_the_project(
    origin: str, refuse: str, tmp_path: Path
) -> None:
    data = write_jsonl(
        tmp_path / "data" / "bad.jsonl",
        [
            '{"input_text": "a", "candidate_0": "x", "candidate_1": "y", "choice": 0}',
            '{"input_text": "b", "candidate_0": "x", "candidate_1": "y", "choice": 1.0}',
        ],
    )
    program = PROGRAMS[origin]("exec-validate-dataset", "validate_dataset")
    inputs = {"kind": "preference", "dataset": str(data), "max_reported": 5}
    done, written = run_isolated(
        program, "validate_dataset", inputs, ["rows", "layout"], tmp_path, refuse
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "bad.jsonl:2: choice: must be the integer 0 or 1" in done.stderr
    assert "ImportError" not in done.stderr
    assert written == {}


def test_compute_steps_runs_without_the_project(origin: str, refuse: str, tmp_path: Path) -> None:
    program = PROGRAMS[origin]("exec-compute-steps", "compute_steps")
    inputs = {
        "preference_rows": 3000,
        "prompt_rows": 2000,
        "reward_model_epochs": 30,
        "reinforcement_learning_epochs": 10,
        "reward_model_train_steps": 0,
        "reinforcement_learning_train_steps": 0,
        "job_uuid": "",
    }
    outputs = ["reward_model_train_steps", "reinforcement_learning_train_steps"]
    done, written = run_isolated(program, "compute_steps", inputs, outputs, tmp_path, refuse)
    assert done.returncode == 0, done.stderr[-3000:]
    assert written == {"reward_model_train_steps": 1410, "reinforcement_learning_train_steps": 320}
