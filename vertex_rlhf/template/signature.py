"""Parameter files meet the pipeline: input values, and a check against the compiled signature.

Reads the compiled YAML with PyYAML only, so the CLI stays fast (no kfp import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vertex_rlhf.config import catalog
from vertex_rlhf.config.params import RLHFParams
from vertex_rlhf.errors import ConfigError, PipelineError
from vertex_rlhf.template.compiler import read_manifest

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (float, int),
    "BOOLEAN": (bool,),
    "LIST": (list,),
}


def pipeline_parameter_values(params: RLHFParams) -> dict[str, Any]:
    """Maps resolved parameters to the pipeline's inputs.

    Unset optional values are left out, so the template's own defaults apply;
    ``project`` and ``location`` are left to the job's project and region.

    Args:
        params: checked parameters.

    Returns:
        ``parameter_values`` for ``aiplatform.PipelineJob``.
    """
    d, t, v = params.dataset, params.training, params.vertex_ai
    values: dict[str, Any] = {
        "preference_dataset": d.preference_dataset,
        "prompt_dataset": d.prompt_dataset,
        "eval_dataset": d.eval_dataset,
        "large_model_reference": catalog.canonical_model_name(t.large_model_reference),
        "reward_model_epochs": t.reward_model_epochs,
        "reinforcement_learning_epochs": t.reinforcement_learning_epochs,
        "reward_model_train_steps": t.reward_model_train_steps or 0,
        "reinforcement_learning_train_steps": t.reinforcement_learning_train_steps or 0,
        "reward_model_learning_rate_multiplier": float(t.reward_model_learning_rate_multiplier),
        "reinforcement_learning_rate_multiplier": float(t.reinforcement_learning_rate_multiplier),
        "kl_coeff": float(t.kl_coeff),
        "instruction": t.instruction,
        "prompt_sequence_length": t.prompt_sequence_length,
        "target_sequence_length": t.target_sequence_length,
        "accelerator_type": t.accelerator_type,
        "deploy_model": t.deploy_model,
        "model_display_name": t.model_display_name,
        "tensorboard_resource_id": t.tensorboard_resource_id or "",
        "encryption_spec_key_name": t.encryption_spec_key_name or "",
        # Recipients are a run parameter, so the template stays environment-agnostic. None
        # are left out: the template's default [] applies, and older templates still fit.
        "notify_emails": list(v.notify_emails) or None,
    }
    return {key: value for key, value in values.items() if value is not None}


def current_template_path(compiled_dir: str | Path = "compiled") -> Path:
    """Finds the current compiled template through ``compiled/manifest.json``.

    Raises:
        PipelineError: nothing compiled yet.
    """
    directory = Path(compiled_dir)
    manifest = read_manifest(directory)
    entry = manifest.get("templates", {}).get(manifest.get("current", ""))
    path = directory / entry["file"] if entry else None
    if path is None or not path.is_file():
        raise PipelineError(f"no compiled template in {directory}/", hint="run `make compile`")
    return path


def template_inputs(template_path: Path) -> dict[str, dict[str, Any]]:
    """Reads the root input definitions of a compiled template.

    Returns:
        Input name -> its definition (``parameterType``, ``defaultValue``, ``isOptional``).
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(template_path.read_text(encoding="utf-8"), Loader=loader)
        inputs: dict[str, dict[str, Any]] = spec["root"]["inputDefinitions"]["parameters"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise PipelineError(
            f"{template_path}: not a readable compiled pipeline ({error})",
            hint="run `make compile`",
        ) from None
    return inputs


def check_against_signature(
    values: dict[str, Any], inputs: dict[str, dict[str, Any]], template: str
) -> None:
    """Checks parameter values against a template's inputs: names, types, required ones.

    Args:
        values: ``parameter_values`` for the job.
        inputs: from ``template_inputs``.
        template: the template's name, for messages.

    Raises:
        ConfigError: unknown inputs, wrong types or missing required inputs.
    """
    problems = []
    for name, value in values.items():
        definition = inputs.get(name)
        if definition is None:
            problems.append(
                f"{template}: has no input {name!r}; inputs: {', '.join(sorted(inputs))}"
            )
            continue
        kind = definition.get("parameterType", "")
        allowed = _PYTHON_TYPES.get(kind)
        wrong_bool = isinstance(value, bool) and kind != "BOOLEAN"
        if allowed and (wrong_bool or not isinstance(value, allowed)):
            problems.append(f"{template}: input {name!r} takes {kind}, got {value!r}")
    for name, definition in inputs.items():
        required = not definition.get("isOptional") and "defaultValue" not in definition
        if required and name not in values:
            problems.append(f"{template}: required input {name!r} has no value")
    if problems:
        raise ConfigError(problems, source=template)
