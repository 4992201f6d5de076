"""Plain-text views: the metric summary of a run and the comparison table of runs.

Metric names come from event files and table cells from servers: each is shown through
``views.text.name`` (escaped, bounded, one line).
"""

from __future__ import annotations

from vertex_rlhf.cloud.metrics import MetricSummary
from vertex_rlhf.views.text import name


def _number(value: float) -> str:
    return f"{value:.4g}"


def trend_word(summary: MetricSummary) -> str:
    """``improving``, ``worsening`` or ``flat`` over the last tenth of the steps."""
    span = abs(summary.first - summary.best) or abs(summary.last) or 1.0
    if abs(summary.trend) <= 0.01 * span:
        return "flat"
    better = summary.trend < 0 if summary.lower_is_better else summary.trend > 0
    return "improving" if better else "worsening"


def render_summary(summaries: list[MetricSummary]) -> str:
    """One line per metric: first, last, best (and its step), the trend over the last tenth."""
    if not summaries:
        return "(no training metrics logged yet)"
    labels = [name(f"{s.stage} {s.name}") for s in summaries]
    width = max(len(label) for label in labels)
    lines = []
    for s, label in zip(summaries, labels, strict=True):
        goal = "lower" if s.lower_is_better else "higher"
        line = (
            f"{label:<{width}}  first {_number(s.first):>9}"
            f"  last {_number(s.last):>9}  best {_number(s.best):>9} @ {s.best_step:<6}"
            f"  last 10%: {s.trend:+.3g} ({trend_word(s)}; {goal} is better)"
            f"  [{s.points} points]"
        )
        if s.non_finite:
            line += f"  {s.non_finite} NaN/inf point(s)!"
        lines.append(line)
    return "\n".join(lines)


def render_table(rows: list[tuple[str, list[str]]]) -> str:
    """Aligns labelled rows into columns (one column per run)."""
    if not rows:
        return ""
    rows = [(name(label), [name(value) for value in values]) for label, values in rows]
    label_width = max(len(label) for label, _ in rows)
    columns = len(rows[0][1])
    widths = [max(len(values[i]) for _, values in rows) for i in range(columns)]
    lines = []
    for label, values in rows:
        cells = "  ".join(f"{v:<{w}}" for v, w in zip(values, widths, strict=True))
        lines.append(f"{label:<{label_width}}  {cells}".rstrip())
    return "\n".join(lines)
