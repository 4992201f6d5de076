"""Runs side by side: one row per fact (template, differing parameters, data, steps, stage
times, final and best metrics), one column per run. Cells are laid out by
``views.tables.render_table``, which shows each through ``views.text``."""

from __future__ import annotations

import json

from vertex_rlhf.cloud import metrics
from vertex_rlhf.cloud.compare import STEP_OUTPUTS, RunFacts
from vertex_rlhf.cloud.monitor import STAGES
from vertex_rlhf.views.text import duration


def _number(value: float) -> str:
    return f"{value:.4g}"


def comparison_rows(runs: list[RunFacts]) -> list[tuple[str, list[str]]]:
    """The table: one row per fact, one column per run; parameters only where they differ."""
    rows: list[tuple[str, list[str]]] = [
        ("job id", [r.job_id for r in runs]),
        ("state", [r.state for r in runs]),
        ("created", [r.created for r in runs]),
        ("template version", [r.version for r in runs]),
        ("template digest", [r.digest or "(local template)" for r in runs]),
        ("pipeline spec", [r.spec_digest for r in runs]),
    ]
    keys = sorted({k for r in runs for k in r.parameters})
    for key in keys:
        values = [json.dumps(r.parameters.get(key), sort_keys=True) for r in runs]
        if len(set(values)) > 1:
            shown = [
                "-" if r.parameters.get(key) is None else v
                for r, v in zip(runs, values, strict=True)
            ]
            rows.append((f"param {key}", shown))
    for kind in ("preference", "prompt", "eval"):
        if any(kind in r.rows for r in runs):
            rows.append((f"rows {kind}", [str(r.rows.get(kind, "-")) for r in runs]))
    for key in STEP_OUTPUTS:
        if any(key in r.steps for r in runs):
            label = key.removesuffix("_train_steps").replace("_", " ")
            rows.append((f"steps {label}", [str(r.steps.get(key, "-")) for r in runs]))
    for stage, _ in STAGES:
        rows.append((f"time {stage}", [duration(r.stage_seconds.get(stage)) for r in runs]))
    rows.append(("time total", [duration(r.total_seconds) for r in runs]))
    order = sorted(
        {(s.stage, s.name) for r in runs for s in r.summaries},
        key=lambda k: (metrics.STAGES.index(k[0]), k[1]),
    )
    for stage, name in order:
        found = [{(s.stage, s.name): s for s in r.summaries}.get((stage, name)) for r in runs]
        rows.append((f"{stage} {name} final", [_number(s.last) if s else "-" for s in found]))
        rows.append(
            (
                f"{stage} {name} best",
                [f"{_number(s.best)} @ {s.best_step}" if s else "-" for s in found],
            )
        )
    return rows
