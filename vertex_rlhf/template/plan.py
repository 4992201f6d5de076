"""What a run will book, before it is paid for: machines, steps, stages, cache, template.

Machines come from GCPC's own ``resolve_machine_spec`` (``_implementation/llm/
function_based.py``), called with the accelerator type of the parameters and the
``use_test_spec`` constant the compiled template gives GCPC's preprocessors. The
compiled template is read to prove that the reward-model trainer, the reinforcer and
the bulk inferrer really take their machine from those preprocessors, so the plan
cannot drift from what runs. No cloud call.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vertex_rlhf.config import catalog
from vertex_rlhf.config.params import RLHFParams
from vertex_rlhf.errors import PipelineError
from vertex_rlhf.template.compiler import read_manifest

# Stage -> (task that books the machine, the GCPC preprocessor it takes the machine from).
MACHINE_TASKS = {
    "reward model training": ("reward-model-trainer", "rlhf-preprocessor"),
    "reinforcement learning": ("reinforcer", "rlhf-preprocessor"),
    "eval inference": ("bulk-inferrer", "infer-preprocessor"),
}
MACHINE_INPUTS = {
    "machine_type": "metadata_machine_type",
    "accelerator_type": "metadata_accelerator_type",
    "accelerator_count": "metadata_accelerator_count",
}
SPEC_SOURCE = "GCPC {gcpc} _implementation/llm/function_based.py:resolve_machine_spec"


@dataclass(frozen=True)
class MachineSpec:
    """What one GCPC custom job books."""

    machine_type: str
    accelerator_type: str
    accelerator_count: int
    location: str

    def __str__(self) -> str:
        return (
            f"{self.machine_type}, {self.accelerator_count}x {self.accelerator_type}"
            f" in {self.location}"
        )


@dataclass(frozen=True)
class StepCount:
    """A step count and where it comes from."""

    steps: int | None
    source: str


@dataclass
class Plan:
    """What a run of one environment will book and run."""

    template: dict[str, str]
    model: str
    accelerator_type: str
    region: str
    machines: dict[str, MachineSpec]
    machine_source: str
    steps: dict[str, StepCount]
    stages: list[tuple[str, bool, str]]
    cache: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain data (for a dry run's YAML)."""
        return {
            "template": self.template,
            "model": self.model,
            "accelerator_type": self.accelerator_type,
            "region": self.region,
            "machines": {stage: str(spec) for stage, spec in self.machines.items()},
            "machine_source": self.machine_source,
            "steps": {k: {"steps": v.steps, "source": v.source} for k, v in self.steps.items()},
            "stages": {
                name: ("runs" if runs else "skipped") + f": {why}"
                for name, runs, why in self.stages
            },
            "cache": dict(sorted((display_task(task), v) for task, v in self.cache)),
        }


def gcpc_machine_spec(accelerator_type: str, use_test_spec: bool = False) -> MachineSpec:
    """Asks GCPC's own ``resolve_machine_spec`` what an accelerator type books.

    Args:
        accelerator_type: ``GPU`` or ``TPU``.
        use_test_spec: GCPC's small test machines (as the compiled template says).

    Raises:
        PipelineError: GCPC refuses the accelerator type.
    """
    from google_cloud_pipeline_components._implementation.llm import function_based

    try:
        spec = function_based.resolve_machine_spec.python_func(
            accelerator_type=accelerator_type, use_test_spec=use_test_spec
        )
    except ValueError as error:
        raise PipelineError(f"GCPC's resolve_machine_spec: {error}") from None
    return MachineSpec(
        spec.machine_type, spec.accelerator_type, int(spec.accelerator_count), spec.tuning_location
    )


def load_spec(template_path: Path) -> dict[str, Any]:
    """Reads a compiled template (PyYAML only)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec: dict[str, Any] = yaml.load(template_path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as error:
        raise PipelineError(f"{template_path}: not readable ({error})") from None
    return spec


def _tasks(spec: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every task of the template by path (``graph/task``), with the chain of tasks to it."""
    components = spec["components"]
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def walk(dag: dict[str, Any], chain: list[tuple[str, dict[str, Any]]]) -> None:
        for name, task in dag.get("tasks", {}).items():
            here = [*chain, (name, task)]
            found["/".join(n for n, _ in here)] = here
            component = components.get(task["componentRef"]["name"], {})
            if "dag" in component:
                walk(component["dag"], here)

    walk(spec["root"]["dag"], [])
    return found


def trace_input(chain: list[tuple[str, dict[str, Any]]], name: str) -> tuple[str, Any]:
    """Follows a task input up through the DAGs to where its value is made.

    Returns:
        ``("constant", value)``, ``("pipeline", input name)`` or
        ``("task", "producer.output")``.
    """
    for depth in range(len(chain) - 1, -1, -1):
        task = chain[depth][1]
        binding = task.get("inputs", {}).get("parameters", {}).get(name, {})
        if "runtimeValue" in binding:
            return "constant", binding["runtimeValue"].get("constant")
        if "taskOutputParameter" in binding:
            out = binding["taskOutputParameter"]
            return "task", f"{out['producerTask']}.{out['outputParameterKey']}"
        if "componentInputParameter" not in binding:
            return "unbound", name
        name = binding["componentInputParameter"]
    return "pipeline", name


def machine_wiring(spec: dict[str, Any]) -> dict[str, Any]:
    """Checks that each machine-booking task takes its machine from GCPC's preprocessor,
    and that the preprocessor is given the pipeline's accelerator_type.

    Returns:
        ``use_test_spec``, the constant the template gives the preprocessors.

    Raises:
        PipelineError: the template is wired otherwise (the plan would be wrong).
    """
    tasks = {path.rsplit("/", 1)[-1]: chain for path, chain in _tasks(spec).items()}
    use_test: set[Any] = set()
    for stage, (task, preprocessor) in MACHINE_TASKS.items():
        if task not in tasks or preprocessor not in tasks:
            raise PipelineError(f"the compiled template has no {task} or {preprocessor} task")
        for argument, output in MACHINE_INPUTS.items():
            source = trace_input(tasks[task], argument)
            if source != ("task", f"{preprocessor}.{output}"):
                raise PipelineError(
                    f"{stage}: {task}.{argument} comes from {source}, not from"
                    f" {preprocessor}.{output}; the plan would not match the template"
                )
        accelerator = trace_input(tasks[preprocessor], "accelerator_type")
        if accelerator != ("pipeline", "accelerator_type"):
            raise PipelineError(f"{preprocessor}.accelerator_type comes from {accelerator}")
        kind, value = trace_input(tasks[preprocessor], "use_test_spec")
        if kind != "constant":
            raise PipelineError(f"{preprocessor}.use_test_spec is not a constant ({kind})")
        use_test.add(bool(value))
    if len(use_test) != 1:
        raise PipelineError("the preprocessors disagree on use_test_spec")
    return {"use_test_spec": use_test.pop()}


# Placeholders Vertex AI resolves to a different value in every job.
PER_JOB_PLACEHOLDERS = ("{{$.pipeline_job_uuid}}", "{{$.pipeline_job_name}}")


def _takes_a_per_job_value(chain: list[tuple[str, dict[str, Any]]]) -> bool:
    """Whether a task has an input bound, through its DAGs, to a per-job placeholder."""
    names = chain[-1][1].get("inputs", {}).get("parameters", {})
    for name in names:
        kind, value = trace_input(chain, name)
        if kind == "constant" and any(p in str(value) for p in PER_JOB_PLACEHOLDERS):
            return True
    return False


def cache_behaviour(spec: dict[str, Any], enable_caching: bool | None) -> list[tuple[str, str]]:
    """Which tasks may be reused from an earlier run with identical inputs.

    Args:
        spec: the compiled template.
        enable_caching: ``vertex_ai.enable_caching`` (null keeps the template's settings).
    """
    rows = []
    for name, chain in _tasks(spec).items():
        task = chain[-1][1]
        if "dag" in spec["components"].get(task["componentRef"]["name"], {}):
            continue
        cached = bool(task.get("cachingOptions", {}).get("enableCache"))
        if enable_caching is not None:
            cached = enable_caching
            why = f"vertex_ai.enable_caching={str(enable_caching).lower()}"
        else:
            why = "template setting"
        if cached and _takes_a_per_job_value(chain):
            # Its cache key holds a value Vertex resolves per job: it can never match.
            cached, why = False, "takes the job's uuid: no earlier run matches"
        verdict = "reused if an earlier run had the same inputs" if cached else "always runs"
        rows.append((name, f"{verdict} ({why})"))
    return sorted(rows)


def _step_count(
    rows: int | None, epochs: int, explicit: int | None, names: dict[str, str]
) -> StepCount:
    if explicit:
        return StepCount(explicit, f"explicit: {names['explicit']}={explicit}")
    if rows is None:
        return StepCount(
            None,
            f"computed in the pipeline as ceil(rows / 64) * {epochs} from the validated"
            f" row count (set {names['size']} to see it here)",
        )
    steps = -(-rows // 64) * epochs
    return StepCount(steps, f"computed: ceil({rows} {names['rows']} / 64) * {epochs} epochs")


def plan_steps(params: RLHFParams, row_counts: dict[str, int | None]) -> dict[str, StepCount]:
    """The step counts of a run and where they come from.

    Args:
        params: checked parameters.
        row_counts: ``preference`` and ``prompt`` rows (counted or declared), or None.
    """
    t = params.training
    return {
        "reward model": _step_count(
            row_counts.get("preference"),
            t.reward_model_epochs,
            t.reward_model_train_steps,
            {
                "explicit": "training.reward_model_train_steps",
                "size": "dataset.preference_size",
                "rows": "preference rows",
            },
        ),
        "reinforcement learning": _step_count(
            row_counts.get("prompt"),
            t.reinforcement_learning_epochs,
            t.reinforcement_learning_train_steps,
            {
                "explicit": "training.reinforcement_learning_train_steps",
                "size": "dataset.prompt_size",
                "rows": "prompt rows",
            },
        ),
    }


def plan_stages(params: RLHFParams) -> list[tuple[str, bool, str]]:
    """Which stages run: GCPC's own rules (``resolve_upload_model``, ``resolve_deploy_model``,
    the ``has_inference_dataset`` condition), applied to the parameters."""
    t, d = params.training, params.dataset
    model = catalog.MODELS.get(catalog.canonical_model_name(t.large_model_reference))
    uploads = bool(model and model.deploys)
    stages = [
        ("dataset checks and step computation", True, "always (never cached)"),
        ("reward model training", True, "always"),
        ("reinforcement learning", True, "always"),
        (
            "eval inference",
            bool(d.eval_dataset),
            "dataset.eval_dataset is set (GCPC's has_inference_dataset)"
            if d.eval_dataset
            else "no dataset.eval_dataset",
        ),
        (
            "upload",
            uploads,
            f"{t.large_model_reference} is {'' if uploads else 'not '}a bison model"
            " (GCPC uploads only those)",
        ),
        (
            "deploy",
            uploads and t.deploy_model,
            f"training.deploy_model={str(t.deploy_model).lower()} and"
            f" {'' if uploads else 'not '}a bison model; an endpoint in {params.vertex_ai.region}"
            " with 1 replica on a machine Vertex chooses (automaticResources in GCPC's"
            " deploy_llm_model)",
        ),
    ]
    return stages


def template_facts(compiled_dir: Path, notify: bool = False) -> tuple[Path, dict[str, str]]:
    """The current compiled template: its path, name, version, digest and SDK versions.

    Args:
        compiled_dir: where the compiled templates and manifest are.
        notify: the variant that e-mails when the run ends (a run with addresses).
    """
    manifest = read_manifest(compiled_dir)
    version = manifest.get("current", "")
    entry = manifest.get("templates", {}).get(version)
    variant = entry.get("notify") if notify and entry else None
    if isinstance(variant, dict):
        entry, version = {**entry, **variant}, f"{version}-notify"
    if not entry or not (compiled_dir / entry["file"]).is_file():
        raise PipelineError(f"no compiled template in {compiled_dir}/", hint="run `make compile`")
    path = compiled_dir / entry["file"]
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return path, {
        "name": str(manifest.get("pipeline", "")),
        "version": version,
        "digest": digest,
        "file": str(path),
        "kfp": str(entry.get("kfp", "")),
        "google_cloud_pipeline_components": str(entry.get("google_cloud_pipeline_components", "")),
    }


def build_plan(
    params: RLHFParams, compiled_dir: Path, row_counts: dict[str, int | None] | None = None
) -> Plan:
    """Builds the plan of a run.

    Args:
        params: checked parameters.
        compiled_dir: where the compiled template and manifest are.
        row_counts: counted or declared ``preference``/``prompt`` rows, if known.

    Raises:
        PipelineError: no compiled template, or it is wired otherwise than the plan assumes.
    """
    from importlib.metadata import version

    path, template = template_facts(compiled_dir, bool(params.vertex_ai.notify_emails))
    spec = load_spec(path)
    wiring = machine_wiring(spec)
    t, v = params.training, params.vertex_ai
    machine = gcpc_machine_spec(t.accelerator_type, wiring["use_test_spec"])
    stages = plan_stages(params)
    runs = {name for name, ran, _ in stages if ran}
    machines = {stage: machine for stage in MACHINE_TASKS if stage in runs}
    if v.template_registry and v.template_version:
        template["digest"] = f"resolved from {v.template_registry} at submit time"
        template["version"] = v.template_version + ("-notify" if v.notify_emails else "")
    return Plan(
        template=template,
        model=catalog.canonical_model_name(t.large_model_reference),
        accelerator_type=t.accelerator_type,
        region=v.region,
        machines=machines,
        machine_source=SPEC_SOURCE.format(gcpc=version("google-cloud-pipeline-components"))
        + f", use_test_spec={str(wiring['use_test_spec']).lower()} in {path.name}",
        steps=plan_steps(params, row_counts or {}),
        stages=stages,
        cache=cache_behaviour(spec, v.enable_caching),
    )


# DAGs that only wrap others (kfp's exit handler and conditions, GCPC's outer graph):
# a person knows a task by the graph it belongs to, not by these.
_WRAPPERS = re.compile(r"^(exit-handler-\d+|condition-\d+|rlhf-train-template)$")
EXIT_TASK = "vertex-pipelines-notification-email"


def display_task(path: str) -> str:
    """A task's path as people read it: ``reward-model-graph/reward-model-trainer`` for
    ``exit-handler-1/rlhf-train-template/reward-model-graph/reward-model-trainer``."""
    parts = [p for p in path.split("/") if not _WRAPPERS.match(p)] or [path]
    shown = "/".join(parts)
    return f"{shown} (e-mail when the run ends)" if shown == EXIT_TASK else shown


def row_counts(params: RLHFParams) -> dict[str, int | None]:
    """Rows of the preference and prompt datasets: counted for local files (every row
    validated, as ``rlhf steps`` does), declared (``dataset.*_size``) for ``gs://``, or None.

    Raises:
        DataError: a local dataset has invalid rows.
    """
    from vertex_rlhf.data.report import count_rows

    d = params.dataset
    counts: dict[str, int | None] = {}
    for kind, path, declared in (
        ("preference", d.preference_dataset, d.preference_size),
        ("prompt", d.prompt_dataset, d.prompt_size),
    ):
        if path.startswith("gs://"):
            counts[kind] = declared
            continue
        counts[kind] = count_rows(path, kind)
    return counts
