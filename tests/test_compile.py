"""The compiled template: up to date, reproducible, wired right, environment-agnostic."""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.components import load_component_from_file
from kfp.pipeline_spec import pipeline_spec_pb2

from components import validate_dataset as validate_component
from pipelines.rlhf_tuning import PIPELINE_NAME, PIPELINE_VERSION
from tests.conftest import REPO
from vertex_rlhf import steps
from vertex_rlhf.config.params import load_params
from vertex_rlhf.template import compiler

COMPILED = REPO / "compiled"
TEMPLATE = COMPILED / f"{PIPELINE_NAME}-{PIPELINE_VERSION}.yaml"
# The variant that ends in Vertex's e-mail notification (an exit handler around the work).
NOTIFY_TEMPLATE = COMPILED / f"{PIPELINE_NAME}-{PIPELINE_VERSION}-notify.yaml"
TEMPLATES = [TEMPLATE, NOTIFY_TEMPLATE]
WORK = {
    "validate-dataset",
    "validate-dataset-2",
    "validate-dataset-3",
    "compute-steps",
    "rlhf-train-template",
}


@pytest.fixture(scope="module", params=TEMPLATES, ids=["plain", "notify"])
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(request.param.read_text(encoding="utf-8"))
    return loaded


def test_compiled_directory_is_up_to_date_with_the_sources() -> None:
    assert compiler.stale_problems(COMPILED) == []


def test_stale_check_notices_a_changed_template(tmp_path: Path) -> None:
    compiler.compile_to(tmp_path)
    target = tmp_path / TEMPLATE.name
    target.write_text(target.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    [problem] = compiler.stale_problems(tmp_path)
    assert problem.startswith(f"{target} differs from a fresh compile of the sources")


def test_compile_is_byte_identical_and_leaves_unchanged_files_alone(tmp_path: Path) -> None:
    first, changed = compiler.compile_to(tmp_path)
    assert changed
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    second, changed = compiler.compile_to(tmp_path)
    assert not changed
    assert first.text == second.text
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes
    for template in TEMPLATES:
        assert (tmp_path / template.name).read_bytes() == template.read_bytes()


def test_manifest_records_versions_and_digest() -> None:
    manifest = json.loads((COMPILED / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["templates"][PIPELINE_VERSION]
    assert manifest["pipeline"] == PIPELINE_NAME
    assert manifest["current"] == PIPELINE_VERSION
    assert entry["file"] == TEMPLATE.name
    assert entry["kfp"] == "2.17.3"
    assert entry["google_cloud_pipeline_components"] == "2.22.0"
    assert entry["sha256"] == hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()
    assert entry["notify"]["file"] == NOTIFY_TEMPLATE.name
    assert entry["notify"]["sha256"] == hashlib.sha256(NOTIFY_TEMPLATE.read_bytes()).hexdigest()


def test_gcpc_compile_time_variables_do_not_change_the_template() -> None:
    env = {
        **os.environ,
        "PRIVATE_IMAGE_TAG": "evil",
        "USE_TEST_MACHINE_SPEC": "true",
        "PRIVATE_ARTIFACT_REGISTRY_PROJECT": "someone-else",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vertex_rlhf",
            "compile",
            "--check",
            "--compiled-dir",
            str(COMPILED),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


@pytest.mark.parametrize("template", TEMPLATES, ids=["plain", "notify"])
def test_template_loads_with_kfp_and_parses_into_the_proto(template: Path) -> None:
    component = load_component_from_file(str(template))
    assert component.name == PIPELINE_NAME
    proto = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(yaml.safe_load(template.read_text(encoding="utf-8")), proto)
    assert proto.pipeline_info.name == PIPELINE_NAME
    assert f"version {PIPELINE_VERSION}" in proto.pipeline_info.description
    if template == TEMPLATE:
        assert set(proto.root.dag.tasks) == WORK
        return
    # Everything runs inside the exit handler, whose exit task sends the e-mail.
    assert set(proto.root.dag.tasks) == {"exit-handler-1", "vertex-pipelines-notification-email"}
    assert set(proto.components["comp-exit-handler-1"].dag.tasks) == WORK


def body_tasks(spec: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's own tasks: the root DAG, or the DAG the exit handler wraps."""
    handler = spec["components"].get("comp-exit-handler-1")
    tasks: dict[str, Any] = (handler or spec["root"])["dag"]["tasks"]
    return tasks


def _validation_task_for(spec: dict[str, Any], kind: str) -> str:
    tasks = body_tasks(spec)
    [name] = [
        n
        for n, t in tasks.items()
        if n.startswith("validate-dataset")
        and t["inputs"]["parameters"]["kind"]["runtimeValue"]["constant"] == kind
    ]
    return name


def test_steps_come_from_validated_row_counts(spec: dict[str, Any]) -> None:
    tasks = body_tasks(spec)
    steps_inputs = tasks["compute-steps"]["inputs"]["parameters"]
    for kind, input_name in (("preference", "preference_rows"), ("prompt", "prompt_rows")):
        producer = _validation_task_for(spec, kind)
        assert steps_inputs[input_name]["taskOutputParameter"] == {
            "outputParameterKey": "rows",
            "producerTask": producer,
        }
    gcpc_inputs = tasks["rlhf-train-template"]["inputs"]["parameters"]
    for name in ("reward_model_train_steps", "reinforcement_learning_train_steps"):
        assert gcpc_inputs[name]["taskOutputParameter"] == {
            "outputParameterKey": name,
            "producerTask": "compute-steps",
        }
    # The eval check also gates the accelerators, without lengthening the critical path.
    eval_task = _validation_task_for(spec, "eval")
    assert eval_task in tasks["compute-steps"]["dependentTasks"]
    assert "compute-steps" in tasks["rlhf-train-template"]["dependentTasks"]


def test_preflight_tasks_are_never_cached(spec: dict[str, Any]) -> None:
    tasks = body_tasks(spec)
    for name in ("validate-dataset", "validate-dataset-2", "validate-dataset-3", "compute-steps"):
        assert not tasks[name].get("cachingOptions", {}).get("enableCache", False), name
    assert tasks["rlhf-train-template"]["cachingOptions"]["enableCache"] is True


def test_every_gcpc_parameter_is_a_pipeline_input(spec: dict[str, Any]) -> None:
    from google_cloud_pipeline_components.preview.llm import rlhf_pipeline

    gcpc = set(rlhf_pipeline.component_spec.inputs)
    ours = spec["root"]["inputDefinitions"]["parameters"]
    computed = {"reward_model_train_steps", "reinforcement_learning_train_steps"}
    assert gcpc - set(ours) == set()
    passed = body_tasks(spec)["rlhf-train-template"]["inputs"]["parameters"]
    handler = spec["root"]["dag"]["tasks"].get("exit-handler-1")
    for name in gcpc - computed:
        if handler is None:  # pipeline input -> GCPC's input
            assert passed[name] == {"componentInputParameter": name}, name
            continue
        # pipeline input -> the exit handler's DAG (as a pipeline channel) -> GCPC's input
        channel = f"pipelinechannel--{name}"
        assert passed[name] == {"componentInputParameter": channel}, name
        assert handler["inputs"]["parameters"][channel] == {"componentInputParameter": name}
    for name, definition in ours.items():
        assert definition.get("description"), f"input {name} has no description"


def test_preflight_needs_no_install_at_run_time(spec: dict[str, Any]) -> None:
    executors = spec["deploymentSpec"]["executors"]
    for name in ("exec-validate-dataset", "exec-compute-steps"):
        container = executors[name]["container"]
        assert container["image"] == "gcr.io/ml-pipeline/google-cloud-pipeline-components:2.22.0"
        assert "pip install" not in " ".join(container["command"])


def test_components_ship_the_library_source_verbatim(spec: dict[str, Any]) -> None:
    executors = spec["deploymentSpec"]["executors"]
    validate_source = executors["exec-validate-dataset"]["container"]["command"][-1]
    for function in validate_component.SHIPPED:
        assert inspect.getsource(function) in validate_source, function.__name__
    steps_source = executors["exec-compute-steps"]["container"]["command"][-1]
    assert inspect.getsource(steps.compute_training_steps) in steps_source


@pytest.mark.parametrize("executor", ["exec-validate-dataset", "exec-compute-steps"])
def test_shipped_source_parses_on_older_pythons(spec: dict[str, Any], executor: str) -> None:
    # GCPC's image is not ours to pick; keep the shipped code to Python 3.8 syntax.
    source = spec["deploymentSpec"]["executors"][executor]["container"]["command"][-1]
    ast.parse(source, feature_version=(3, 8))


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("template", TEMPLATES, ids=["plain", "notify"])
def test_template_is_environment_agnostic(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    for env in ("dev", "prod", "local"):
        params = load_params(env, params_dir=REPO / "params")
        for value in (
            params.vertex_ai.project_id,
            params.vertex_ai.pipeline_root,
            params.dataset.preference_dataset,
            params.dataset.prompt_dataset,
        ):
            assert value not in text, value
    assert "serviceAccount" not in text
    assert "{{$.pipeline_google_cloud_project_id}}" in text


def test_a_corrupt_manifest_names_a_fix_that_works_as_printed(tmp_path: Path) -> None:
    import shlex
    import shutil

    from tests.conftest import REPO
    from vertex_rlhf.errors import PipelineError
    from vertex_rlhf.template.compiler import manifest_fix, read_manifest

    folder = tmp_path / "compiled copy"
    shutil.copytree(REPO / "compiled", folder)
    (folder / "manifest.json").write_text("{bad", encoding="utf-8")
    with pytest.raises(PipelineError) as caught:
        read_manifest(folder)
    assert caught.value.hint == manifest_fix(folder)
    printed = caught.value.hint.split("run `", 1)[1].split("`", 1)[0]
    shutil.rmtree(folder)  # "remove FOLDER", then the command as printed
    argv = shlex.split(printed)
    assert argv[:2] == ["rlhf", "compile"]
    from vertex_rlhf import cli

    assert cli.main(argv[1:]) == 0
    assert read_manifest(folder)["current"]
    # The project's own compiled/ is committed: git restores it.
    assert manifest_fix(REPO / "compiled").endswith("checkout -- compiled/manifest.json`")
