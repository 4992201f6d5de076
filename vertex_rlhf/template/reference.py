"""The parameter reference's rows (``docs/parameters.md``, drawn by ``views.reference``),
generated from the schema.

Every key, type and default comes from the schema dataclasses in ``config/params.py``.
Descriptions come from the compiled template's input descriptions (what the Vertex console
shows), else from ``DESCRIPTIONS`` below, else from the comment above the field in the
schema. Allowed models, accelerators and regions come from ``config/catalog.py``, the values
every environment starts from from ``params/base.yaml``, the original layout's keys from
``original/layout.py``. ``make docs`` rewrites the file; a test fails when it is stale.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING

from vertex_rlhf.config import catalog, params
from vertex_rlhf.template import signature

# Keys the template does not describe and whose schema comment (if any) is not about them.
DESCRIPTIONS = {
    "vertex_ai.project_id": "the Google Cloud project the run is billed to and runs in.",
    "vertex_ai.region": "the region of the pipeline job (GCPC's RLHF pipeline runs in these).",
    "vertex_ai.pipeline_root": "gs://BUCKET/PATH where Vertex writes the run's artifacts.",
    "vertex_ai.pipeline_display_name": "the run's name in the console.",
    "vertex_ai.service_account": "the service account the run acts as (e-mail).",
    "vertex_ai.network": (
        "a VPC network to peer the run with (projects/NUMBER/global/networks/NAME)."
    ),
    "vertex_ai.experiment": "a Vertex AI experiment to record the run in.",
    "vertex_ai.labels": "extra run labels (Vertex label rules: a-z, 0-9, _ and -).",
}
ALLOWED = {
    "training.large_model_reference": ", ".join(catalog.tunable_models()),
    "training.accelerator_type": ", ".join(
        f"{name} ({catalog.HARDWARE[name]})" for name in catalog.ACCELERATORS
    ),
    "vertex_ai.region": ", ".join(catalog.REGIONS),
}


def _field_comments(schema: type) -> dict[str, str]:
    """Comment blocks above fields in a schema class; a block covers the fields right after
    it, up to a blank line."""
    source = textwrap.dedent(inspect.getsource(schema))
    comments: dict[str, str] = {}
    block: list[str] = []
    current = ""
    previous_line = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            if token.start[0] != previous_line + 1 or not block:
                block = []
            block.append(token.string.lstrip("# ").strip())
            current = " ".join(block)
            previous_line = token.start[0]
        elif token.type == tokenize.NL and token.start[0] == previous_line + 1:
            current, block = "", []  # a blank line ends the block's reach
        elif token.type == tokenize.NAME and token.start[1] == 4 and current:
            comments[token.string] = current
            previous_line = token.start[0]
            block = []
    return comments


def _type_name(f: dataclasses.Field[Any]) -> str:
    text = str(f.type).replace("typing.", "")
    if text.startswith("Optional[") and text.endswith("]"):
        return f"{text[len('Optional[') : -1]} or null"
    return text


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is MISSING:
        return "required"
    if f.default is not dataclasses.MISSING:
        return _cell(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return _cell(f.default_factory())
    return ""


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return f"`{text.removesuffix('...').strip()}`".replace("|", "\\|")


def rows(template_path: Path, base_yaml: Path) -> list[dict[str, str]]:
    """One row per schema key: key, type, default, base.yaml value, description, allowed."""
    inputs = signature.template_inputs(template_path)
    base = yaml.safe_load(base_yaml.read_text(encoding="utf-8")) or {}
    found = []
    for section in dataclasses.fields(params.RLHFParams):
        schema = section.default_factory
        comments = _field_comments(schema)  # type: ignore[arg-type]
        for f in dataclasses.fields(schema):  # type: ignore[arg-type]
            key = f"{section.name}.{f.name}"
            described = (
                inputs.get(f.name, {}).get("description")
                or DESCRIPTIONS.get(key)
                or comments.get(f.name, "")
            )
            section_base = base.get(section.name) or {}
            found.append(
                {
                    "key": key,
                    "type": _type_name(f),
                    "default": _default(f),
                    "base": _cell(section_base[f.name]) if f.name in section_base else "",
                    "description": described.rstrip("."),
                    "allowed": ALLOWED.get(key, ""),
                }
            )
    return found
