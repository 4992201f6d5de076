"""Parameter files meet the pipeline: input values, and a check against the compiled signature.

Reads the compiled YAML with PyYAML only, so the CLI stays fast (no kfp import).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Callable

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


# Inputs of the template that no parameter key sets: Vertex resolves their defaults to the
# job's own project and region.
JOB_INPUTS = ("project", "location")
# The one input whose value is rewritten on the way: the catalog's spelling of the model.
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "large_model_reference": catalog.canonical_model_name,
}


def input_keys() -> list[tuple[str, str, Any]]:
    """The parameter keys that are pipeline inputs (``params.pipeline_input``).

    Returns:
        ``(section, input name, type hint)`` in schema order.
    """
    found = []
    for section in dataclasses.fields(RLHFParams):
        schema: Any = section.default_factory
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            if f.metadata.get("pipeline_input"):
                found.append((section.name, f.name, hints[f.name]))
    return found


def pipeline_parameter_values(params: RLHFParams) -> dict[str, Any]:
    """Maps resolved parameters to the pipeline's inputs.

    Every key declared with ``params.pipeline_input`` is sent under its name. Unset
    values (null, ``[]``) are left out, so the template's own defaults apply (0 steps
    computes them; no ``notify_emails`` picks the variant without e-mail); ``project``
    and ``location`` are left to the job's project and region.

    Args:
        params: checked parameters.

    Returns:
        ``parameter_values`` for ``aiplatform.PipelineJob``.
    """
    values: dict[str, Any] = {}
    for section, name, hint in input_keys():
        value = getattr(getattr(params, section), name)
        if value is None or value == []:
            continue
        if name in _CONVERT:
            value = _CONVERT[name](value)
        elif hint is float:
            value = float(value)  # an int written in a file is still a NUMBER_DOUBLE
        elif isinstance(value, list):
            value = list(value)
        values[name] = value
    return values


def current_template_path(compiled_dir: str | Path = "compiled", notify: bool = False) -> Path:
    """Finds the current compiled template through ``compiled/manifest.json``.

    Args:
        compiled_dir: usually ``compiled/``.
        notify: the variant that e-mails when the run ends, where the version has one.

    Raises:
        PipelineError: nothing compiled yet.
    """
    directory = Path(compiled_dir)
    manifest = read_manifest(directory)
    entry = manifest.get("templates", {}).get(manifest.get("current", ""))
    variant = entry.get("notify") if notify and entry else None
    entry = variant if isinstance(variant, dict) else entry
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


def template_identity(template_path: Path) -> tuple[str, str]:
    """A compiled template's pipeline name, and the version ``compiled/``'s manifest beside
    it records for the file (``<version>-notify`` for the e-mail variant; else ``local``).

    Raises:
        PipelineError: not a readable compiled pipeline.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(template_path.read_text(encoding="utf-8"), Loader=loader)
        name = str(spec["pipelineInfo"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise PipelineError(
            f"{template_path}: not a readable compiled pipeline ({error})",
            hint="run `make compile`",
        ) from None
    try:
        manifest = read_manifest(template_path.parent)
    except (PipelineError, ConfigError):
        return name, "local"
    for version, entry in manifest.get("templates", {}).items():
        if entry.get("file") == template_path.name:
            return name, str(version)
        if (entry.get("notify") or {}).get("file") == template_path.name:
            return name, f"{version}-notify"
    return name, "local"


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
    problems = _notification_problems(values, inputs, template)
    for name, value in values.items():
        definition = inputs.get(name)
        if definition is None and name == NOTIFY_INPUT:
            continue
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
        if required and name not in values and name != NOTIFY_INPUT:
            problems.append(f"{template}: required input {name!r} has no value")
    if problems:
        raise ConfigError(problems, source=template)


NOTIFY_INPUT = "notify_emails"


def holds_notification(inputs: dict[str, dict[str, Any]]) -> bool:
    """Whether a template ends in Vertex's e-mail task: only those take ``notify_emails``."""
    return NOTIFY_INPUT in inputs


def _notification_problems(
    values: dict[str, Any], inputs: dict[str, dict[str, Any]], template: str
) -> list[str]:
    """Addresses need a template with the e-mail task; the ``-notify`` variant needs them."""
    definition = inputs.get(NOTIFY_INPUT)
    if NOTIFY_INPUT in values and definition is None:
        return [
            f"{template}: has no e-mail task, but vertex_ai.notify_emails lists addresses:"
            " use the version's -notify variant (`rlhf submit` picks it for a compiled"
            " version or a registry tag; a file or sha256: you pin must be the -notify one)"
            " or set vertex_ai.notify_emails=[]"
        ]
    required = definition is not None and not definition.get("isOptional")
    if required and NOTIFY_INPUT not in values and "defaultValue" not in (definition or {}):
        return [
            f"{template}: is the variant that e-mails when the run ends and needs"
            " vertex_ai.notify_emails (1 to 3 addresses); to run without e-mail, submit"
            " the version without -notify"
        ]
    return []
