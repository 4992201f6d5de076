"""Charts as PNG files: one panel per metric, stages labelled; runs overlaid to compare.

Drawn on matplotlib's Agg canvas through ``Figure`` (no pyplot, no display needed). The
panel titles and each panel's line labels are written into the PNG's text metadata
(``Panels``, ``Lines``) as well.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vertex_rlhf.cloud.metrics import STAGES, Point
from vertex_rlhf.data.writes import replace_whole
from vertex_rlhf.views.text import name as outside_name

STAGE_LABELS = {"reward_model": "reward model", "reinforcement_learning": "reinforcement learning"}
STAGE_COLOURS = {"reward_model": "tab:blue", "reinforcement_learning": "tab:orange"}
PANEL_INCHES = (5.0, 3.2)
DPI = 100


def _label(text: str) -> str:
    """A name from an event file or a server, as a chart label: escaped, bounded, and with
    ``$`` kept literal (matplotlib reads ``$...$`` as mathtext, and a stray one fails)."""
    return outside_name(text, 100).replace("$", r"\$")


def _panels(series: list[dict[tuple[str, str], list[Point]]]) -> list[tuple[str, str]]:
    keys = {key for one in series for key in one}
    return sorted(keys, key=lambda k: (STAGES.index(k[0]), k[1]))


def _by_metric(points: list[Point]) -> dict[tuple[str, str], list[Point]]:
    grouped: dict[tuple[str, str], list[Point]] = {}
    for point in sorted(points, key=lambda p: p.step):
        if point.value is not None:
            grouped.setdefault((point.stage, point.name), []).append(point)
    return grouped


def _draw(
    lines: list[tuple[str, list[Point]]], path: Path, title: str, colour_by_stage: bool
) -> list[str]:
    """Draws one panel per (stage, metric) with one line per labelled series."""
    from matplotlib.figure import Figure

    series = [_by_metric(points) for _, points in lines]
    panels = _panels(series)
    if not panels:
        return []
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(
        figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.6), dpi=DPI, layout="tight"
    )
    figure.suptitle(_label(title))
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    titles: list[str] = []
    drawn: dict[str, list[str]] = {}
    for ax, (stage, name) in zip(axes, panels, strict=False):
        panel = f"{_label(STAGE_LABELS.get(stage, stage))}: {_label(name)}"
        drawn[panel] = []
        for (label, _), grouped in zip(lines, series, strict=True):
            data = grouped.get((stage, name))
            if not data:
                continue
            drawn[panel].append(_label(label))
            style: dict[str, Any] = {"label": _label(label)}
            if colour_by_stage:
                style["color"] = STAGE_COLOURS.get(stage)
            ax.plot([p.step for p in data], [p.value for p in data], **style)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(lines) > 1 or colour_by_stage:
            ax.legend(fontsize=8)
        titles.append(panel)
    for ax in axes[len(panels) :]:
        figure.delaxes(ax)
    metadata = {
        "Title": title,
        "Panels": json.dumps(titles),
        "Lines": json.dumps(drawn),
        "Software": "vertex-rlhf",
    }
    # Whole or not at all: a full disk is a coded error naming the PNG, with no leftover.
    replace_whole(path, lambda handle: figure.savefig(handle, format="png", metadata=metadata))
    return titles


def metrics_png(points: list[Point], path: Path, title: str) -> list[str]:
    """Writes one run's metrics: a panel per metric, coloured and titled by stage.

    Args:
        points: the run's metric points.
        path: the PNG to write (replaced whole; nothing when there are no points).
        title: the figure title.

    Returns:
        The panel titles, in order (``[]``: no points, no file).
    """
    labelled = [(STAGE_LABELS[stage], [p for p in points if p.stage == stage]) for stage in STAGES]
    return _draw([(label, pts) for label, pts in labelled if pts], path, title, True)


def comparison_png(runs: list[tuple[str, list[Point]]], path: Path, title: str) -> list[str]:
    """Writes runs overlaid: a panel per metric, a line per run.

    Args:
        runs: (label, points) of each run.
        path: the PNG to write.
        title: the figure title.

    Returns:
        The panel titles, in order.
    """
    return _draw(runs, path, title, False)
