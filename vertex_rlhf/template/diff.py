"""What changed between two compiled templates: a pure comparison of two parsed specs.

``compare(a, b)`` takes two compiled KFP pipeline specs (the YAML, parsed) and returns a
``TemplateDiff``: the pipeline inputs added, removed or changed (type, default, optional,
description), the components added, removed or changed, the tasks of the pipeline's own
body added or removed, the container images that changed, the kfp and GCPC versions the
templates record, and whether the GCPC part is byte-identical.

The GCPC part (``gcpc_components``): the components GCPC compiled into the template,
found by structure rather than by name. The pipeline's own body is the root DAG and
the control-flow DAGs kfp makes for it (``exit-handler-N``, ``condition-N``,
``for-loop-N``, ``condition-branches-N``). A task of the body that calls a graph (a nested
pipeline, such as GCPC's ``preview.llm.rlhf_pipeline``) whose executors run GCPC's code,
or calls a leaf component whose executor runs GCPC's code, starts the GCPC part; the part
is that component and every component it reaches, with their executors. An executor
runs GCPC's code when its container command or arguments name the
``google_cloud_pipeline_components`` package (GCPC's launchers and its function-based
components do; every executor here runs GCPC's image, ours included, so the image does
not tell). "Byte-identical" compares the canonical form of that part: the components and
executors keyed by their names, as JSON with sorted keys, no spaces, UTF-8; the YAML's
layout and key order do not count, any value does. The arguments our body passes to
GCPC's tasks belong to the body, not to the part.

Templates are outside input: a value of an unexpected type is read as absent, never
trusted, and every text reaches a screen only through ``views.text``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vertex_rlhf.errors import PipelineError

# What marks an executor that runs GCPC's code.
GCPC_PACKAGE = "google_cloud_pipeline_components"
# The image GCPC's components run; its tag is the GCPC release that compiled them.
GCPC_IMAGE = re.compile(r"(?:^|/)google-cloud-pipeline-components:([A-Za-z0-9._-]{1,128})$")
# The DAGs kfp makes for a pipeline's control flow (part of the pipeline's own body).
CONTROL_FLOW = re.compile(r"^comp-(?:exit-handler|condition|for-loop|condition-branches)-\d+$")
# Component inputs whose default is a container image (GCPC's CustomJob payloads take it).
IMAGE_INPUT = re.compile(r"image_uri$")
GCPC = "gcpc"
# The name the root DAG is compared under (no component is called that: kfp names them comp-...).
ROOT = "root"
PIPELINE = "pipeline"


def canonical(value: Any) -> bytes:
    """The canonical bytes of a parsed value: JSON, sorted keys, no spaces, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping with text keys, else empty (a hostile spec's shape)."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if isinstance(k, str)}
    return {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Input:
    """One pipeline input as a template declares it.

    Attributes:
        name: the input's name.
        kind: ``parameter`` or ``artifact``.
        type: the parameter type (``STRING``, ``NUMBER_INTEGER``, ...) or the artifact's
            schema title.
        optional: whether a run may leave it unset.
        has_default: whether the template holds a default (``default`` is then it).
        default: the default value, as parsed (any JSON value).
        description: the description the console shows.
    """

    name: str
    kind: str
    type: str
    optional: bool
    has_default: bool
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class InputChange:
    """An input both templates declare, declared differently.

    Attributes:
        name: the input.
        a: as the first template declares it.
        b: as the second does.
        aspects: what differs, of ``kind``, ``type``, ``default``, ``optional``,
            ``description`` (in that order).
    """

    name: str
    a: Input
    b: Input
    aspects: tuple[str, ...]


@dataclass(frozen=True)
class ComponentChange:
    """A component both templates hold, with other content.

    Attributes:
        name: the component (its key in the spec's ``components``, ``comp-...``), or
            ``root`` for the pipeline's root DAG.
        part: ``gcpc`` or ``pipeline`` (in the second template).
        aspects: what differs, of ``interface`` (its inputs and outputs), ``dag`` (its
            tasks), ``executor`` (its executor's container, image aside), ``image``,
            ``other`` (anything else in the component).
    """

    name: str
    part: str
    aspects: tuple[str, ...]


@dataclass(frozen=True)
class Component:
    """A component one template holds and the other does not.

    Attributes:
        name: the component (``comp-...``).
        part: ``gcpc`` or ``pipeline``.
    """

    name: str
    part: str


@dataclass(frozen=True)
class ImageChange:
    """An executor both templates hold, whose container image differs."""

    executor: str
    a: str
    b: str


@dataclass(frozen=True)
class Versions:
    """The versions one template records.

    Attributes:
        kfp: the kfp SDK that compiled it (``sdkVersion`` without ``kfp-``; empty when
            absent).
        gcpc: the GCPC releases its executors' images name
            (``.../google-cloud-pipeline-components:<v>``), sorted.
        schema: the PipelineSpec schema version.
        pipeline: the pipeline's name (``pipelineInfo.name``).
    """

    kfp: str
    gcpc: tuple[str, ...]
    schema: str
    pipeline: str


@dataclass(frozen=True)
class GcpcPart:
    """The GCPC part of both templates, compared canonically.

    Attributes:
        identical: the canonical bytes of both parts are equal.
        a_sha256: sha256 of the first part's canonical bytes.
        b_sha256: of the second's.
        a_components: how many components the first part holds.
        b_components: the second's.
        added: GCPC components only the second holds.
        removed: only the first.
        changed: in both, with other content.
    """

    identical: bool
    a_sha256: str
    b_sha256: str
    a_components: int
    b_components: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TemplateDiff:
    """What changed from template ``a`` to template ``b``."""

    a: Versions
    b: Versions
    same_spec: bool
    inputs_added: tuple[Input, ...]
    inputs_removed: tuple[Input, ...]
    inputs_changed: tuple[InputChange, ...]
    components_added: tuple[Component, ...]
    components_removed: tuple[Component, ...]
    components_changed: tuple[ComponentChange, ...]
    components_same: int
    tasks_added: tuple[str, ...]
    tasks_removed: tuple[str, ...]
    images_added: tuple[str, ...]
    images_removed: tuple[str, ...]
    images_changed: tuple[ImageChange, ...]
    gcpc: GcpcPart


def check_spec(spec: Any, source: str) -> dict[str, Any]:
    """The spec if it looks like a compiled KFP pipeline.

    Raises:
        PipelineError: not a mapping with ``pipelineInfo``, ``root`` and ``components``.
    """
    if not isinstance(spec, Mapping):
        raise PipelineError(f"{source}: not a compiled pipeline (a {type(spec).__name__})")
    missing = [k for k in ("pipelineInfo", "root") if not isinstance(spec.get(k), Mapping)]
    if missing:
        raise PipelineError(
            f"{source}: not a compiled pipeline (no {' or '.join(missing)})",
        )
    return dict(spec)


def _inputs(spec: dict[str, Any]) -> dict[str, Input]:
    definitions = _mapping(_mapping(spec.get("root")).get("inputDefinitions"))
    found: dict[str, Input] = {}
    for name, raw in _mapping(definitions.get("parameters")).items():
        item = _mapping(raw)
        found[name] = Input(
            name,
            "parameter",
            _text(item.get("parameterType")),
            item.get("isOptional") is True,
            "defaultValue" in item,
            item.get("defaultValue"),
            _text(item.get("description")),
        )
    for name, raw in _mapping(definitions.get("artifacts")).items():
        item = _mapping(raw)
        schema = _mapping(item.get("artifactType"))
        found.setdefault(
            name,
            Input(
                name,
                "artifact",
                _text(schema.get("schemaTitle")),
                item.get("isOptional") is True,
                False,
                None,
                _text(item.get("description")),
            ),
        )
    return found


def _input_aspects(a: Input, b: Input) -> tuple[str, ...]:
    aspects = []
    if a.kind != b.kind:
        aspects.append("kind")
    if a.type != b.type:
        aspects.append("type")
    if a.has_default != b.has_default or canonical(a.default) != canonical(b.default):
        aspects.append("default")
    if a.optional != b.optional:
        aspects.append("optional")
    if a.description != b.description:
        aspects.append("description")
    return tuple(aspects)


def _executors(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    executors = _mapping(_mapping(spec.get("deploymentSpec")).get("executors"))
    return {k: _mapping(v) for k, v in executors.items()}


def _components(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: _mapping(v) for k, v in _mapping(spec.get("components")).items()}


def _tasks(dag_holder: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: _mapping(v) for k, v in _mapping(_mapping(dag_holder.get("dag")).get("tasks")).items()
    }


def _called(task: dict[str, Any]) -> str:
    return _text(_mapping(task.get("componentRef")).get("name"))


def _image(executor: dict[str, Any]) -> str:
    return _text(_mapping(executor.get("container")).get("image"))


def _runs_gcpc(executor: dict[str, Any]) -> bool:
    container = _mapping(executor.get("container"))
    words = [container.get("command"), container.get("args")]
    return any(
        isinstance(word, str) and GCPC_PACKAGE in word
        for listed in words
        if isinstance(listed, list)
        for word in listed
    )


def _reached(start: str, components: dict[str, dict[str, Any]]) -> set[str]:
    """``start`` and every component its DAG reaches (cycles in a hostile spec end)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in components:
            continue
        seen.add(name)
        todo += [_called(task) for task in _tasks(components[name]).values()]
    return seen


def gcpc_components(spec: dict[str, Any]) -> set[str]:
    """The components of the GCPC part (see the module's doc)."""
    components = _components(spec)
    executors = _executors(spec)

    def runs_gcpc(name: str) -> bool:
        return any(
            _runs_gcpc(executors.get(_text(components[c].get("executorLabel")), {}))
            for c in _reached(name, components)
        )

    part: set[str] = set()
    body_seen: set[str] = set()
    todo = [_tasks(_mapping(spec.get("root")))]
    while todo:
        for task in todo.pop().values():
            called = _called(task)
            if called not in components or called in body_seen:
                continue
            if CONTROL_FLOW.match(called):
                body_seen.add(called)
                todo.append(_tasks(components[called]))
            elif runs_gcpc(called):
                part |= _reached(called, components)
    return part


def _body_tasks(spec: dict[str, Any]) -> set[str]:
    """The tasks of the pipeline's own body (the root and its control-flow DAGs)."""
    components = _components(spec)
    found: set[str] = set()
    seen: set[str] = set()
    todo = [_tasks(_mapping(spec.get("root")))]
    while todo:
        for name, task in todo.pop().items():
            found.add(name)
            called = _called(task)
            if CONTROL_FLOW.match(called) and called in components and called not in seen:
                seen.add(called)
                todo.append(_tasks(components[called]))
    return found


def _images(spec: dict[str, Any]) -> set[str]:
    """Every container image a template names: executor images, and image defaults."""
    found = {_image(e) for e in _executors(spec).values()}
    for component in _components(spec).values():
        parameters = _mapping(_mapping(component.get("inputDefinitions")).get("parameters"))
        for name, item in parameters.items():
            default = _mapping(item).get("defaultValue")
            if IMAGE_INPUT.search(name) and isinstance(default, str):
                found.add(default)
    found.discard("")
    return found


def versions(spec: dict[str, Any]) -> Versions:
    """The kfp and GCPC versions, schema and pipeline name a template records."""
    sdk = _text(spec.get("sdkVersion"))
    gcpc = set()
    for executor in _executors(spec).values():
        tagged = GCPC_IMAGE.search(_image(executor))
        if tagged:
            gcpc.add(tagged.group(1))
    return Versions(
        sdk.removeprefix("kfp-"),
        tuple(sorted(gcpc)),
        _text(spec.get("schemaVersion")),
        _text(_mapping(spec.get("pipelineInfo")).get("name")),
    )


def _component_aspects(
    a: dict[str, Any], b: dict[str, Any], a_exec: dict[str, Any], b_exec: dict[str, Any]
) -> tuple[str, ...]:
    aspects = []
    interface = ("inputDefinitions", "outputDefinitions")
    if any(canonical(a.get(k)) != canonical(b.get(k)) for k in interface):
        aspects.append("interface")
    if canonical(a.get("dag")) != canonical(b.get("dag")):
        aspects.append("dag")

    def without_image(executor: dict[str, Any]) -> bytes:
        container = {k: v for k, v in _mapping(executor.get("container")).items() if k != "image"}
        return canonical({**executor, "container": container})

    if without_image(a_exec) != without_image(b_exec):
        aspects.append("executor")
    if _image(a_exec) != _image(b_exec):
        aspects.append("image")
    rest = (*interface, "dag", "executorLabel")
    if canonical({k: v for k, v in a.items() if k not in rest}) != canonical(
        {k: v for k, v in b.items() if k not in rest}
    ):
        aspects.append("other")
    return tuple(aspects)


def _part_bytes(spec: dict[str, Any], part: Iterable[str]) -> bytes:
    components = _components(spec)
    executors = _executors(spec)
    chosen = {name: components[name] for name in part if name in components}
    used = {_text(c.get("executorLabel")) for c in chosen.values()}
    return canonical(
        {
            "components": chosen,
            "executors": {name: executors[name] for name in used if name in executors},
        }
    )


def compare(a: dict[str, Any], b: dict[str, Any]) -> TemplateDiff:
    """What changed from template ``a`` to template ``b`` (both parsed, see ``check_spec``)."""
    a_inputs, b_inputs = _inputs(a), _inputs(b)
    changed_inputs = []
    for name in sorted(a_inputs.keys() & b_inputs.keys()):
        aspects = _input_aspects(a_inputs[name], b_inputs[name])
        if aspects:
            changed_inputs.append(InputChange(name, a_inputs[name], b_inputs[name], aspects))

    # The root is compared as a component too: its DAG is the pipeline's own body.
    a_comps = {**_components(a), ROOT: _mapping(a.get("root"))}
    b_comps = {**_components(b), ROOT: _mapping(b.get("root"))}
    a_execs, b_execs = _executors(a), _executors(b)
    a_part, b_part = gcpc_components(a), gcpc_components(b)

    def part_a(name: str) -> str:
        return GCPC if name in a_part else PIPELINE

    def part_b(name: str) -> str:
        return GCPC if name in b_part else PIPELINE

    changed_components = []
    for name in sorted(a_comps.keys() & b_comps.keys()):
        aspects = _component_aspects(
            a_comps[name],
            b_comps[name],
            a_execs.get(_text(a_comps[name].get("executorLabel")), {}),
            b_execs.get(_text(b_comps[name].get("executorLabel")), {}),
        )
        if aspects:
            changed_components.append(ComponentChange(name, part_b(name), aspects))

    image_changes = []
    for name in sorted(a_execs.keys() & b_execs.keys()):
        if _image(a_execs[name]) != _image(b_execs[name]):
            image_changes.append(ImageChange(name, _image(a_execs[name]), _image(b_execs[name])))

    a_bytes, b_bytes = _part_bytes(a, a_part), _part_bytes(b, b_part)
    changed_names = {c.name for c in changed_components}
    gcpc = GcpcPart(
        identical=a_bytes == b_bytes,
        a_sha256="sha256:" + hashlib.sha256(a_bytes).hexdigest(),
        b_sha256="sha256:" + hashlib.sha256(b_bytes).hexdigest(),
        a_components=len(a_part),
        b_components=len(b_part),
        added=tuple(sorted(b_part - a_part)),
        removed=tuple(sorted(a_part - b_part)),
        changed=tuple(sorted((a_part & b_part) & changed_names)),
    )
    a_images, b_images = _images(a), _images(b)
    a_tasks, b_tasks = _body_tasks(a), _body_tasks(b)
    return TemplateDiff(
        a=versions(a),
        b=versions(b),
        same_spec=canonical(a) == canonical(b),
        inputs_added=tuple(b_inputs[n] for n in sorted(b_inputs.keys() - a_inputs.keys())),
        inputs_removed=tuple(a_inputs[n] for n in sorted(a_inputs.keys() - b_inputs.keys())),
        inputs_changed=tuple(changed_inputs),
        components_added=tuple(
            Component(n, part_b(n)) for n in sorted(b_comps.keys() - a_comps.keys())
        ),
        components_removed=tuple(
            Component(n, part_a(n)) for n in sorted(a_comps.keys() - b_comps.keys())
        ),
        components_changed=tuple(changed_components),
        components_same=len(a_comps.keys() & b_comps.keys()) - len(changed_components),
        tasks_added=tuple(sorted(b_tasks - a_tasks)),
        tasks_removed=tuple(sorted(a_tasks - b_tasks)),
        images_added=tuple(sorted(b_images - a_images)),
        images_removed=tuple(sorted(a_images - b_images)),
        images_changed=tuple(image_changes),
        gcpc=gcpc,
    )
