"""``rlhf diff``: what changed between two template versions, as text or as JSON.

Every text that came from a template (names, types, defaults, images, versions) or a
registry passes ``views.text`` on its way to the screen. The JSON form (``as_json``) is
for machines: its keys are stable (``JSON_FORMAT`` names the form) and the values are
the templates' own, JSON-escaped (non-ASCII and control characters as ``\\uXXXX``).
"""

from __future__ import annotations

import json
from typing import Any

from vertex_rlhf.template.diff import Input, InputChange, TemplateDiff, Versions
from vertex_rlhf.usecases.diff import DiffReport, TemplateSource
from vertex_rlhf.views.text import name, path

# The form of ``rlhf diff --json``; a change to its keys changes this.
JSON_FORMAT = "rlhf-diff/1"
# The most characters of a default value shown in the text form.
DEFAULT_LIMIT = 80


def _value(value: Any) -> str:
    """A default as the text form shows it: JSON, on one line, escaped and bounded."""
    return name(json.dumps(value, ensure_ascii=False, sort_keys=True), DEFAULT_LIMIT)


def _input_text(item: Input) -> str:
    parts = [name(item.type) or "?"]
    if item.kind != "parameter":
        parts.append(name(item.kind))
    parts.append("optional" if item.optional else "required")
    if item.has_default:
        parts.append(f"default {_value(item.default)}")
    return ", ".join(parts)


def _aspect_text(change: InputChange) -> str:
    shown = []
    for aspect in change.aspects:
        if aspect == "type":
            shown.append(f"type {name(change.a.type)} -> {name(change.b.type)}")
        elif aspect == "kind":
            shown.append(f"kind {change.a.kind} -> {change.b.kind}")
        elif aspect == "default":
            a = _value(change.a.default) if change.a.has_default else "(none)"
            b = _value(change.b.default) if change.b.has_default else "(none)"
            shown.append(f"default {a} -> {b}")
        elif aspect == "optional":
            shown.append("now optional" if change.b.optional else "now required (it was optional)")
        else:
            shown.append("description")
    return "; ".join(shown)


def _source_line(label: str, source: TemplateSource) -> str:
    if source.origin == "compiled":
        where = f"compiled file {path(source.location)} ({name(source.digest)})"
    else:  # the digest URL names the digest
        where = f"registry {name(source.location, 1000)}"
    line = f"  {label}  {name(source.ref)} = {where}"
    if source.note:
        line += f"\n      note: {name(source.note, 1000)}"
    return line


def _same(a: str, b: str) -> str:
    return f"{a} (same)" if a == b else f"{a} -> {b}  CHANGED"


def _gcpc_versions(v: Versions, source: TemplateSource) -> str:
    shown = ", ".join(name(x) for x in v.gcpc) or "(no GCPC image)"
    if source.manifest_gcpc and source.manifest_gcpc not in v.gcpc:
        shown += f" (compiled/manifest.json says {name(source.manifest_gcpc)})"
    return shown


def _section(title: str, counts: list[tuple[int, str]], lines: list[str]) -> list[str]:
    said = ", ".join(f"{n} {what}" for n, what in counts)
    return [f"{title}: {said}", *lines]


def render(report: DiffReport) -> str:
    """The text form: sources, versions, inputs, components, tasks, images, GCPC part."""
    d: TemplateDiff = report.diff
    out = [
        f"template diff: {name(report.a.ref)} -> {name(report.b.ref)}",
        _source_line("A", report.a),
        _source_line("B", report.b),
    ]
    if report.same_bytes:
        out.append("  A and B are the same file (equal digests): nothing changed")
    kfp_a, kfp_b = name(d.a.kfp) or "(unknown)", name(d.b.kfp) or "(unknown)"
    out += [
        "versions (from the templates: sdkVersion, and the tag of GCPC's executor image)",
        f"  kfp     {_same(kfp_a, kfp_b)}",
        f"  GCPC    {_same(_gcpc_versions(d.a, report.a), _gcpc_versions(d.b, report.b))}",
        f"  schema  {_same(name(d.a.schema), name(d.b.schema))}",
    ]
    if d.a.pipeline != d.b.pipeline:
        out.append(f"  pipeline name {name(d.a.pipeline)} -> {name(d.b.pipeline)}  CHANGED")

    lines = [f"  + {name(i.name)}  {_input_text(i)}" for i in d.inputs_added]
    lines += [f"  - {name(i.name)}  {_input_text(i)}" for i in d.inputs_removed]
    lines += [f"  ~ {name(c.name)}  {_aspect_text(c)}" for c in d.inputs_changed]
    out += _section(
        "pipeline inputs",
        [
            (len(d.inputs_added), "added"),
            (len(d.inputs_removed), "removed"),
            (len(d.inputs_changed), "changed"),
        ],
        lines,
    )

    lines = [f"  + {name(c.name)} ({c.part})" for c in d.components_added]
    lines += [f"  - {name(c.name)} ({c.part})" for c in d.components_removed]
    lines += [
        f"  ~ {name(c.name)} ({c.part}): {', '.join(c.aspects)}" for c in d.components_changed
    ]
    out += _section(
        "components",
        [
            (len(d.components_added), "added"),
            (len(d.components_removed), "removed"),
            (len(d.components_changed), "changed"),
            (d.components_same, "unchanged"),
        ],
        lines,
    )

    lines = [f"  + {name(t)}" for t in d.tasks_added]
    lines += [f"  - {name(t)}" for t in d.tasks_removed]
    out += _section(
        "tasks of the pipeline's own body",
        [(len(d.tasks_added), "added"), (len(d.tasks_removed), "removed")],
        lines,
    )

    lines = [f"  + {name(i, 1000)}" for i in d.images_added]
    lines += [f"  - {name(i, 1000)}" for i in d.images_removed]
    lines += [
        f"  ~ {name(c.executor)}: {name(c.a, 1000)} -> {name(c.b, 1000)}" for c in d.images_changed
    ]
    out += _section(
        "container images",
        [
            (len(d.images_added), "added"),
            (len(d.images_removed), "removed"),
            (len(d.images_changed), "executors with another image"),
        ],
        lines,
    )

    g = d.gcpc
    verdict = "byte-identical" if g.identical else "NOT byte-identical"
    out.append(
        f"GCPC part: {verdict} ({g.a_components} -> {g.b_components} components;"
        f" canonical sha256 {g.a_sha256[7:19]} -> {g.b_sha256[7:19]})"
    )
    out += [f"  + {name(c)}" for c in g.added]
    out += [f"  - {name(c)}" for c in g.removed]
    out += [f"  ~ {name(c)}" for c in g.changed]
    if not g.identical:
        same = g.a_components - len(g.removed) - len(g.changed)
        out.append(f"  the other {same} GCPC components are byte-identical")
    return "\n".join(out)


def _input_json(item: Input) -> dict[str, Any]:
    return {
        "name": item.name,
        "kind": item.kind,
        "type": item.type,
        "optional": item.optional,
        "has_default": item.has_default,
        "default": item.default,
        "description": item.description,
    }


def _side_json(source: TemplateSource, versions: Versions) -> dict[str, Any]:
    return {
        "ref": source.ref,
        "source": source.origin,
        "location": source.location,
        "digest": source.digest,
        "version": source.version,
        "note": source.note,
        "pipeline": versions.pipeline,
        "kfp": versions.kfp,
        "gcpc": list(versions.gcpc),
        "schema_version": versions.schema,
        "manifest": (
            {"kfp": source.manifest_kfp, "gcpc": source.manifest_gcpc}
            if source.origin == "compiled"
            else None
        ),
    }


def as_dict(report: DiffReport) -> dict[str, Any]:
    """The machine form (``JSON_FORMAT``); see README "What changed between two template
    versions" for every key."""
    d = report.diff
    g = d.gcpc
    return {
        "format": JSON_FORMAT,
        "a": _side_json(report.a, d.a),
        "b": _side_json(report.b, d.b),
        "same_file": report.same_bytes,
        "inputs": {
            "added": [_input_json(i) for i in d.inputs_added],
            "removed": [_input_json(i) for i in d.inputs_removed],
            "changed": [
                {
                    "name": c.name,
                    "aspects": list(c.aspects),
                    "a": _input_json(c.a),
                    "b": _input_json(c.b),
                }
                for c in d.inputs_changed
            ],
        },
        "components": {
            "added": [{"name": c.name, "part": c.part} for c in d.components_added],
            "removed": [{"name": c.name, "part": c.part} for c in d.components_removed],
            "changed": [
                {"name": c.name, "part": c.part, "aspects": list(c.aspects)}
                for c in d.components_changed
            ],
            "unchanged": d.components_same,
        },
        "tasks": {"added": list(d.tasks_added), "removed": list(d.tasks_removed)},
        "images": {
            "added": list(d.images_added),
            "removed": list(d.images_removed),
            "changed": [{"executor": c.executor, "a": c.a, "b": c.b} for c in d.images_changed],
        },
        "gcpc": {
            "identical": g.identical,
            "a_sha256": g.a_sha256,
            "b_sha256": g.b_sha256,
            "a_components": g.a_components,
            "b_components": g.b_components,
            "added": list(g.added),
            "removed": list(g.removed),
            "changed": list(g.changed),
        },
    }


def as_json(report: DiffReport) -> str:
    """``as_dict`` as JSON text: sorted keys, ASCII only (every other character escaped)."""
    return json.dumps(as_dict(report), indent=2, sort_keys=True, ensure_ascii=True)
