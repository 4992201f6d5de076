"""The plan: machines from GCPC's own resolve_machine_spec, wired as the compiled template
says; steps and where they come from; stages; cache; template version and digest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CURRENT_VERSION, REPO, TEST_PROJECT
from vertex_rlhf import cli
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import PipelineError
from vertex_rlhf.template import plan
from vertex_rlhf.views.plan import render_plan

TEMPLATE = REPO / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
GPU = plan.MachineSpec("a2-ultragpu-8g", "NVIDIA_A100_80GB", 8, "us-central1")
TPU = plan.MachineSpec("cloud-tpu", "TPU_V3", 64, "europe-west4")
TPU_RUN = ("training.accelerator_type=TPU", "vertex_ai.region=europe-west4")


def build(env: str = "dev", *overrides: str, compiled: Path = REPO / "compiled") -> plan.Plan:
    params = load_params(env, list(overrides), REPO / "params")
    return plan.build_plan(params, compiled, plan.row_counts(params))


def edit_template(compiled: Path, change: Any) -> None:
    """Rewrites the compiled template of a copy of compiled/ through ``change(spec)``."""
    path = compiled / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
    spec = yaml.safe_load(path.read_text())
    change(spec)
    path.write_text(yaml.safe_dump(spec))


def task(spec: dict[str, Any], component: str, name: str) -> dict[str, Any]:
    tasks: dict[str, Any] = spec["components"][component]["dag"]["tasks"]
    return tasks[name]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("project_env")
def test_gpu_run_books_what_gcpc_resolves() -> None:
    result = build("dev")
    assert result.machines == {
        "reward model training": GPU,
        "reinforcement learning": GPU,
        "eval inference": GPU,
    }
    assert "resolve_machine_spec" in result.machine_source
    assert f"use_test_spec=false in rlhf-tuning-{CURRENT_VERSION}.yaml" in result.machine_source


@pytest.mark.usefixtures("project_env")
def test_tpu_run_books_what_gcpc_resolves() -> None:
    result = build("dev", *TPU_RUN)
    assert set(result.machines.values()) == {TPU}


def test_gcpc_is_asked_not_a_table_of_ours() -> None:
    from google_cloud_pipeline_components._implementation.llm import function_based

    for accelerator in ("GPU", "TPU"):
        for test_spec in (False, True):
            gcpc = function_based.resolve_machine_spec.python_func(accelerator, test_spec)
            ours = plan.gcpc_machine_spec(accelerator, test_spec)
            assert (ours.machine_type, ours.accelerator_count, ours.location) == (
                gcpc.machine_type,
                gcpc.accelerator_count,
                gcpc.tuning_location,
            )
    with pytest.raises(PipelineError, match="resolve_machine_spec"):
        plan.gcpc_machine_spec("CPU_ONLY")


@pytest.mark.usefixtures("project_env")
def test_plan_follows_use_test_spec_of_the_compiled_template(compiled_copy: Path) -> None:
    def test_machines(spec: dict[str, Any]) -> None:
        graph = "comp-rlhf-train-template"
        task(spec, graph, "rlhf-preprocessor")["inputs"]["parameters"]["use_test_spec"] = {
            "runtimeValue": {"constant": True}
        }
        inner = task(spec, "comp-infer-eval-template", "infer-preprocessor")
        inner["inputs"]["parameters"]["use_test_spec"] = {"runtimeValue": {"constant": True}}

    edit_template(compiled_copy, test_machines)
    result = build("dev", compiled=compiled_copy)
    assert result.machines["reward model training"] == plan.MachineSpec(
        "a2-highgpu-1g", "NVIDIA_TESLA_A100", 1, "us-central1"
    )


@pytest.mark.usefixtures("project_env")
def test_a_template_wired_otherwise_stops_the_plan(compiled_copy: Path) -> None:
    def pin_machine(spec: dict[str, Any]) -> None:
        trainer = task(spec, "comp-reward-model-graph", "reward-model-trainer")
        trainer["inputs"]["parameters"]["machine_type"] = {
            "runtimeValue": {"constant": "n1-standard-4"}
        }

    edit_template(compiled_copy, pin_machine)
    with pytest.raises(PipelineError, match=r"reward-model-trainer\.machine_type"):
        build("dev", compiled=compiled_copy)


def test_the_compiled_template_is_wired_as_the_plan_assumes() -> None:
    spec = plan.load_spec(TEMPLATE)
    assert plan.machine_wiring(spec) == {"use_test_spec": False}


@pytest.mark.usefixtures("project_env")
def test_cache_verdicts_are_the_template_settings() -> None:
    spec = plan.load_spec(TEMPLATE)
    result = dict(build("dev").cache)
    leaves = {}
    for path, chain in plan._tasks(spec).items():
        component = spec["components"][chain[-1][1]["componentRef"]["name"]]
        if "dag" not in component:
            leaves[path] = bool(chain[-1][1].get("cachingOptions", {}).get("enableCache"))
    assert set(result) == set(leaves)
    for path, cached in leaves.items():
        assert result[path].startswith("reused if" if cached else "always runs"), path

    def verdict(path: str) -> str:
        """The verdict of the one task whose path ends with ``path`` (wrappers may nest it)."""
        (found,) = [v for k, v in result.items() if k == path or k.endswith("/" + path)]
        return found

    assert verdict("validate-dataset").startswith("always runs")
    assert verdict("rlhf-train-template/reward-model-graph/reward-model-trainer").startswith(
        "always runs"
    )
    assert verdict("rlhf-train-template/rlhf-preprocessor").startswith("reused if")
    nothing = dict(build("dev", "vertex_ai.enable_caching=false").cache)
    assert all(v.startswith("always runs") for v in nothing.values())


@pytest.mark.usefixtures("project_env")
def test_steps_and_where_they_come_from() -> None:
    dev = build("dev").steps
    assert (dev["reward model"].steps, dev["reinforcement learning"].steps) == (1410, 320)
    assert "ceil(3000 preference rows / 64) * 30" in dev["reward model"].source
    prod = build("prod").steps
    assert prod["reward model"].steps == 10000
    assert prod["reward model"].source.startswith("explicit: training.reward_model_train_steps")
    unknown = build("dev", "dataset.prompt_size=null").steps["reinforcement learning"]
    assert unknown.steps is None and "dataset.prompt_size" in unknown.source
    local = build("local").steps  # samples/: 160 preference rows, 100 prompts
    assert (local["reward model"].steps, local["reinforcement learning"].steps) == (90, 20)


def retired_model_plan(model: str, *overrides: str) -> plan.Plan:
    """The plan GCPC's rules give a deploying (PaLM) model, which checks now refuse."""
    params = load_params("dev", list(overrides), REPO / "params")
    params.training.large_model_reference = model
    return plan.build_plan(params, REPO / "compiled", plan.row_counts(params))


@pytest.mark.usefixtures("project_env")
def test_stages_follow_gcpcs_rules() -> None:
    llama = {name: runs for name, runs, _ in build("dev").stages}
    assert llama["eval inference"] and not llama["upload"] and not llama["deploy"]
    bison = retired_model_plan(
        "text-bison@002", "training.deploy_model=true", "dataset.eval_dataset=null"
    )
    stages = {name: runs for name, runs, _ in bison.stages}
    assert stages["upload"] and stages["deploy"] and not stages["eval inference"]
    assert "eval inference" not in bison.machines
    no_deploy = retired_model_plan("chat-bison@001", "training.deploy_model=false")
    stages = {name: runs for name, runs, _ in no_deploy.stages}
    assert stages["upload"] and not stages["deploy"]


@pytest.mark.usefixtures("project_env")
def test_template_version_and_digest() -> None:
    result = build("dev")
    manifest = json.loads((REPO / "compiled" / "manifest.json").read_text())
    assert result.template["version"] == manifest["current"]
    digest = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()
    assert result.template["digest"] == f"sha256:{digest}"
    assert manifest["templates"][manifest["current"]]["sha256"] == digest
    pinned = build(
        "dev",
        "vertex_ai.template_registry=https://us-central1-kfp.pkg.dev/rlhf-test-project/repo",
        "vertex_ai.template_version=1.0.0",
    )
    assert pinned.template["digest"].startswith("resolved from https://us-central1-kfp")


@pytest.mark.usefixtures("project_env")
def test_dry_run_carries_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["submit", "dev", "--dry-run", *TPU_RUN]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["plan"]["machines"]["reward model training"] == str(TPU)
    assert printed["plan"]["steps"]["reward model"]["steps"] == 1410


@pytest.mark.parametrize(
    ("overrides", "machine"),
    [
        ("", "a2-ultragpu-8g, 8x NVIDIA_A100_80GB in us-central1"),
        (" ".join(TPU_RUN), "cloud-tpu, 64x TPU_V3 in europe-west4"),
    ],
)
def test_make_plan_prints_the_machines(overrides: str, machine: str) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "plan", "ENV=dev", f"OVERRIDES={overrides}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for stage in ("reward model training", "reinforcement learning", "eval inference"):
        assert f"    {stage:<24} {machine}" in result.stdout
    assert f"template: rlhf-tuning {CURRENT_VERSION} (sha256:" in result.stdout


@pytest.mark.usefixtures("project_env")
def test_tasks_that_take_the_job_uuid_always_run_even_with_caching_on() -> None:
    # enable_caching=true turns every task's cache on, but a key that holds
    # {{$.pipeline_job_uuid}} never matches an earlier job: the plan must not promise reuse.
    cache = {k.split("/")[-1]: v for k, v in build("dev", "vertex_ai.enable_caching=true").cache}
    ours = ("validate-dataset", "validate-dataset-2", "validate-dataset-3", "compute-steps")
    for task in ours:
        assert cache[task].startswith("always runs") and "job's uuid" in cache[task], task
    assert cache["reward-model-trainer"].startswith("reused if")  # the point of resuming
    assert cache["rlhf-preprocessor"].startswith("reused if")


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
    assert any(line.split()[0] == "vertex-pipelines-notification-email" for line in cache)
    columns = {re.search(r"  (always runs|reused if)", line).start() for line in cache}  # type: ignore[union-attr]
    assert len(columns) == 1, "\n".join(cache)
