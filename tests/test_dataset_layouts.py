"""Layout vs model: chat models read messages rows, text models input_text rows, and every
dataset of a run shares one layout. Checked by `check`, `steps`, `validate-data` and by the
pipeline's dataset checks, before anything is booked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kfp import local

from components.validate_dataset import validate_dataset
from pipelines.rlhf_tuning import MODEL_LAYOUTS, PIPELINE_VERSION
from tests.conftest import REPO, SAMPLES
from vertex_rlhf import cli
from vertex_rlhf.config import catalog
from vertex_rlhf.data.report import check_layouts_agree, model_layout
from vertex_rlhf.data.rules import new_dataset_report

# `check` needs a project (no environment invents one).
pytestmark = pytest.mark.usefixtures("project_env")

CHAT_MODEL = "training.large_model_reference=llama-2-7b-chat"
CHAT_SETS = [
    f"dataset.preference_dataset={SAMPLES / 'chat_preference.jsonl'}",
    f"dataset.prompt_dataset={SAMPLES / 'chat_prompt.jsonl'}",
    "dataset.eval_dataset=null",
]


@pytest.mark.parametrize(
    ("overrides", "wrong"),
    [
        ([CHAT_MODEL], "preference.jsonl: rows are text (input_text) but llama-2-7b-chat is a"),
        (CHAT_SETS, "chat_preference.jsonl: rows are chat (messages) but t5-small is a text"),
        (
            [f"dataset.prompt_dataset={SAMPLES / 'chat_prompt.jsonl'}"],
            "chat_prompt.jsonl: rows are chat (messages) but t5-small is a text model",
        ),
        (
            [CHAT_MODEL, *CHAT_SETS[:2], f"dataset.eval_dataset={SAMPLES / 'eval.jsonl'}"],
            "eval.jsonl: rows are text (input_text) but llama-2-7b-chat is a chat model",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "steps", "validate-data"])
def test_layout_that_does_not_fit_the_model_is_refused(
    command: str, overrides: list[str], wrong: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if command == "steps" and "eval" in wrong:
        pytest.skip("steps reads the training datasets only")
    assert cli.main([command, "local", *overrides]) == 15
    captured = capsys.readouterr()
    assert wrong in captured.out + captured.err
    assert "error[DATA_005]" in captured.err


@pytest.mark.parametrize("command", ["check", "steps", "validate-data"])
def test_chat_data_for_a_chat_model_passes(command: str) -> None:
    assert cli.main([command, "local", CHAT_MODEL, *CHAT_SETS]) == 0


def test_validate_data_path_takes_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SAMPLES / "chat_prompt.jsonl")
    args = ["validate-data", "--path", path, "--kind", "prompt"]
    assert cli.main(args) == 0
    assert cli.main([*args, "--model", "t5-small"]) == 15
    assert "but t5-small is a text model" in capsys.readouterr().out


def test_layouts_must_agree_when_the_model_is_unknown() -> None:
    reports: dict[str, Any] = {}
    for kind, layout in (("preference", "chat"), ("prompt", "text"), ("eval", "prompt chat")):
        reports[kind] = new_dataset_report(f"{kind}.jsonl", kind)
        reports[kind]["layout"] = layout
    check_layouts_agree(reports)
    assert reports["preference"]["errors"] == reports["eval"]["errors"] == 0
    assert reports["prompt"]["problems"] == [
        "prompt.jsonl: rows are text but the preference dataset's are chat; a run reads"
        " every dataset with one model, so they need one layout"
    ]


def test_model_layouts_come_from_the_catalog() -> None:
    assert {n: model_layout(n) for n in catalog.MODELS} == MODEL_LAYOUTS
    assert {n for n, layout in MODEL_LAYOUTS.items() if layout == "chat"} == {
        "chat-bison@001",
        "llama-2-7b-chat",
        "llama-2-13b-chat",
    }
    assert model_layout("Llama_2_7B_Chat") == "chat" and model_layout("no-such-model") == ""


@pytest.mark.parametrize("suffix", ["", "-notify"])
def test_compiled_checks_receive_the_model_and_its_layouts(suffix: str) -> None:
    spec = yaml.safe_load(
        (REPO / "compiled" / f"rlhf-tuning-{PIPELINE_VERSION}{suffix}.yaml").read_text(
            encoding="utf-8"
        )
    )
    channel = "large_model_reference"
    tasks = spec["root"]["dag"]["tasks"]
    if suffix:
        # The checks run inside the exit handler's DAG, which passes pipeline inputs on
        # as pipelinechannel--NAME.
        handler = tasks["exit-handler-1"]["inputs"]["parameters"]
        tasks = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
        channel = "pipelinechannel--large_model_reference"
        assert handler[channel] == {"componentInputParameter": "large_model_reference"}
    for name in ("validate-dataset", "validate-dataset-2", "validate-dataset-3"):
        inputs = tasks[name]["inputs"]["parameters"]
        assert inputs["large_model_reference"] == {"componentInputParameter": channel}
        assert inputs["model_layouts"]["runtimeValue"]["constant"] == MODEL_LAYOUTS
    # Nothing is booked before the checks pass: the steps wait for all three.
    assert set(tasks["compute-steps"]["dependentTasks"]) >= {
        "validate-dataset",
        "validate-dataset-2",
        "validate-dataset-3",
    }


@pytest.fixture(scope="module")
def kfp_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path_factory.mktemp("kfp-local")),
    )
    yield


@pytest.mark.usefixtures("kfp_local")
@pytest.mark.parametrize(
    ("model", "name", "kind", "passes"),
    [
        ("llama-2-7b-chat", "preference.jsonl", "preference", False),
        ("LLAMA_2_7B_CHAT", "chat_preference.jsonl", "preference", True),
        ("t5-small", "chat_prompt.jsonl", "prompt", False),
        ("t5-small", "eval.jsonl", "eval", True),
        ("chat-bison@001", "eval.jsonl", "eval", False),
        ("some-new-model", "chat_prompt.jsonl", "prompt", True),  # GCPC itself refuses it
    ],
)
def test_component_checks_the_layout_against_the_model(
    model: str, name: str, kind: str, passes: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    run = {
        "kind": kind,
        "dataset": str(SAMPLES / name),
        "large_model_reference": model,
        "model_layouts": MODEL_LAYOUTS,
    }
    if passes:
        assert validate_dataset(**run).outputs["rows"] > 0
        return
    with pytest.raises(RuntimeError, match="FAILURE"):
        validate_dataset(**run)
    output = capfd.readouterr()
    assert f"but {model} is a" in output.out + output.err
