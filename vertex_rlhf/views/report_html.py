"""A run's report as one self-contained HTML page (``RunReport`` -> HTML), to open and share.

Nothing is fetched when the page is viewed: the styles are in the page, the charts are
SVG drawn here, and a Content-Security-Policy forbids any load (``default-src 'none'``)
and runs only the page's own two small scripts (by their hashes). The scripts do nothing
a reader needs: they write each section's and chart's drawn size, and any load the
policy refused, into the page's attributes, for a headless browser to check.

Every text that came from a server, a dataset or an event file passes
``views.text`` (escaped control and bidirectional characters, bounded) and then
``html.escape``: a task error or a prompt holding ``<script>`` shows as text.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vertex_rlhf.cloud.metrics import MetricSummary, Point
from vertex_rlhf.data.writes import replace_whole
from vertex_rlhf.errors import DataError
from vertex_rlhf.usecases.report import RunReport, StageSpan, TaskSpan
from vertex_rlhf.views.tables import trend_word
from vertex_rlhf.views.text import duration, name, outside

# The sections every report has, in order: (id, heading).
SECTIONS = (
    ("run", "Run"),
    ("timeline", "Timeline by stage"),
    ("template", "Template"),
    ("parameters", "Parameters sent"),
    ("datasets", "Datasets"),
    ("steps", "Training steps"),
    ("metrics", "Training metrics"),
    ("failure", "Failure and fix"),
    ("eval", "Eval prompts and responses"),
)
# How much of one outside text the page shows: a value, a long text (errors, prompts).
VALUE_LIMIT = 500
TEXT_LIMIT = 4000
URI_LIMIT = 1000
MAX_CHART_POINTS = 400  # points drawn per chart line (min and max kept per bucket)
STAGE_LABELS = {"reward_model": "reward model", "reinforcement_learning": "reinforcement learning"}
STAGE_COLOURS = {"reward_model": "#1f77b4", "reinforcement_learning": "#ff7f0e"}
STATE_COLOURS = {
    "SUCCEEDED": "#2e7d32",
    "succeeded": "#2e7d32",
    "FAILED": "#c62828",
    "failed": "#c62828",
    "RUNNING": "#1565c0",
    "running": "#1565c0",
    "CANCELLED": "#6d6d6d",
    "cancelled": "#6d6d6d",
    "CANCELLING": "#6d6d6d",
}
PENDING_COLOUR = "#b0b7c3"

# Registered first: records any load the policy refused (there should be none).
WATCH_SCRIPT = (
    "document.addEventListener('securitypolicyviolation',function(e){"
    "var b=document.documentElement;"
    "b.setAttribute('data-blocked',(b.getAttribute('data-blocked')||'')+' '+e.blockedURI);});"
)
# Run last: the drawn size of every section and chart, as attributes.
MEASURE_SCRIPT = (
    "(function(){var n=document.querySelectorAll('section[id], svg.chart');"
    "for(var i=0;i<n.length;i++){var r=n[i].getBoundingClientRect();"
    "n[i].setAttribute('data-drawn',Math.round(r.width)+'x'+Math.round(r.height));}"
    "document.documentElement.setAttribute('data-measured','yes');})();"
)

STYLE = """
:root { --ink:#1d2330; --muted:#5b6474; --line:#dde2ea; --band:#f5f7fa; --accent:#1565c0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #eef1f5; }
header { background: #1d2330; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 20px; font-weight: 600; word-break: break-all; }
header .sub { color: #c5ccd8; font-size: 13px; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: 8px 32px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; font-size: 13px; }
main { max-width: 1120px; margin: 0 auto; padding: 16px 24px 48px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 20px; margin: 16px 0; }
section h2 { margin: 0 0 12px; font-size: 16px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff;
  font-weight: 600; font-size: 12px; letter-spacing: .04em; }
.facts { display: grid; grid-template-columns: 180px 1fr; gap: 4px 16px; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.value, td.path { word-break: break-all; }
pre, .text { white-space: pre-wrap; word-break: break-word; font: 12px/1.45 ui-monospace,
  SFMono-Regular, Menlo, Consolas, monospace; background: var(--band); border-radius: 6px;
  padding: 8px 10px; margin: 4px 0; max-height: 320px; overflow: auto; }
.muted { color: var(--muted); }
.cell { max-height: 140px; overflow: auto; white-space: pre-wrap; }
.note { color: var(--muted); font-size: 13px; margin: 8px 0 0; }
.warn { background: #fff8e1; border: 1px solid #ffe082; border-radius: 6px; padding: 8px 12px;
  margin: 8px 0; }
.fail { border-left: 4px solid #c62828; padding-left: 12px; }
.fix { background: #e8f5e9; border-radius: 6px; padding: 8px 12px; margin-top: 8px; }
.progress { height: 8px; background: var(--line); border-radius: 4px; overflow: hidden;
  width: 240px; display: inline-block; vertical-align: middle; margin-left: 8px; }
.progress span { display: block; height: 100%; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr));
  gap: 16px; margin-top: 12px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
svg.chart { display: block; width: 100%; height: auto; }
.sample { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 10px 0;
  padding-bottom: 10px; border-bottom: 1px solid var(--line); }
.sample h3 { margin: 0 0 2px; font-size: 12px; color: var(--muted); font-weight: 600; }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 16px; }
"""


def esc(value: object, limit: int = VALUE_LIMIT) -> str:
    """A text from outside, as HTML: escaped controls and marks, bounded, then HTML-escaped."""
    return html.escape(outside(value, limit), quote=True)


def esc_name(value: object, limit: int = 200) -> str:
    """A name from outside on one line, as HTML."""
    return html.escape(name(value, limit), quote=True)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, PENDING_COLOUR)
    return f'<span class="badge" style="background:{colour}">{esc_name(state, 40)}</span>'


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _policy() -> str:
    scripts = " ".join(_script_hash(s) for s in (WATCH_SCRIPT, MEASURE_SCRIPT))
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:;"
        f" script-src {scripts}; base-uri 'none'; form-action 'none'"
    )


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list; each value is HTML already."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """A table; cells are HTML already."""
    classes = classes or [""] * len(head)
    cols = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{c}">{cell}</td>' if c else f"<td>{cell}</td>"
            for cell, c in zip(row, classes, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cols}</tr></thead><tbody>{body}</tbody></table>"


def _section(ident: str, heading: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{html.escape(heading)}</h2>{body}</section>'


def _run(report: RunReport) -> str:
    colour = STATE_COLOURS.get(report.state, PENDING_COLOUR)
    progress = max(0, min(100, report.progress))
    rows = [
        (
            "state",
            f"{_badge(report.state)} {progress}%"
            f'<span class="progress"><span style="width:{progress}%;background:{colour}">'
            "</span></span>",
        ),
        ("job", esc_name(report.job_name, URI_LIMIT)),
        ("created", esc_name(report.created or "-")),
        ("started", esc_name(report.started or "-")),
        ("ended", esc_name(report.finished or ("-" if report.ended else "(still running)"))),
        ("duration", html.escape(duration(report.elapsed_seconds))),
    ]
    if report.console_url:
        url = name(report.console_url, URI_LIMIT)
        link = url if url.startswith("https://console.cloud.google.com/") else ""
        shown = html.escape(url, quote=True)
        rows.append(("console", f'<a href="{shown}">{shown}</a>' if link else shown))
    for key, value in sorted(report.outputs.items()):
        rows.append((name(key, 100), esc_name(value or "(none)", URI_LIMIT)))
    if report.labels:
        labels = ", ".join(
            f"{esc_name(k, 100)}={esc_name(v, 100)}" for k, v in sorted(report.labels.items())
        )
        rows.append(("labels", labels))
    body = _facts(rows)
    for warning in report.warnings:
        body += f'<div class="warn">warning: {esc(warning, TEXT_LIMIT)}</div>'
    return body


def _ticks(span: float) -> list[float]:
    """About six round tick values from 0 to ``span`` seconds."""
    if span <= 0:
        return [0.0]
    raw = span / 6
    for step in (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400):
        if step >= raw:
            break
    else:
        step = math.ceil(raw / 86400) * 86400
    return [i * step for i in range(int(span // step) + 1)]


def timeline_svg(stages: list[StageSpan], tasks: list[TaskSpan], total: float | None) -> str:
    """Stages and their tasks as horizontal bars on one time axis (an SVG element)."""
    rows: list[tuple[str, str, float | None, float | None, bool]] = []
    for stage in stages:
        rows.append((stage.name, stage.state, stage.start, stage.seconds, True))
        for task in tasks:
            if task.stage == stage.name:
                rows.append((task.name, task.state, task.start, task.seconds, False))
    # Tasks outside the work's stages (the e-mail notification, tasks of no stage), by
    # their own stage name.
    known = {s.name for s in stages}
    for group in dict.fromkeys(t.stage or "" for t in tasks if t.stage not in known):
        rows.append((group or "other tasks", "", None, None, True))
        rows += [
            (t.name, t.state, t.start, t.seconds, False)
            for t in tasks
            if (t.stage or "") == group and t.stage not in known
        ]
    ends = [(s or 0.0) + (d or 0.0) for _, _, s, d, _ in rows if s is not None]
    span = max([total or 0.0, *ends, 1.0])
    label_w, bar_w, row_h, top = 290, 600, 20, 24
    width = label_w + bar_w + 90
    height = top + row_h * len(rows) + 28
    parts = [
        f'<svg class="chart" id="timeline-chart" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="timeline by stage">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for tick in _ticks(span):
        x = label_w + bar_w * tick / span
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 24}"'
            ' stroke="#e3e7ee"/>'
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" fill="#5b6474"'
            f' text-anchor="middle">{html.escape(duration(tick))}</text>'
        )
    for index, (label, state, start, seconds, heading) in enumerate(rows):
        y = top + index * row_h
        weight = "600" if heading else "400"
        indent = 4 if heading else 18
        if heading:
            parts.append(f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="#f5f7fa"/>')
        parts.append(
            f'<text x="{indent}" y="{y + 14}" font-size="12" font-weight="{weight}"'
            f' fill="#1d2330">{esc_name(label, 40)}</text>'
        )
        colour = STATE_COLOURS.get(state, PENDING_COLOUR)
        if start is not None:
            x = label_w + bar_w * start / span
            w = max(2.0, bar_w * (seconds or 0.0) / span)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}"'
                f' rx="3" fill="{colour}"><title>{esc_name(label)}: {esc_name(state, 40)},'
                f" {html.escape(duration(seconds))}</title></rect>"
            )
            parts.append(
                f'<text x="{min(x + w + 4, label_w + bar_w + 4):.1f}" y="{y + 14}" font-size="11"'
                f' fill="#5b6474">{html.escape(duration(seconds))}</text>'
            )
        elif state or not heading:
            parts.append(
                f'<text x="{label_w + 4}" y="{y + 14}" font-size="11" fill="#8a93a3">'
                f"{esc_name(state.lower() if state else 'not run', 40)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _timeline(report: RunReport) -> str:
    if not report.tasks:
        return '<p class="muted">No task has started yet.</p>'
    legend = " ".join(
        f'<span class="badge" style="background:{c}">{s}</span>'
        for s, c in (
            ("succeeded", "#2e7d32"),
            ("running", "#1565c0"),
            ("failed", "#c62828"),
            ("cancelled", "#6d6d6d"),
        )
    )
    stages = _table(
        ["stage", "state", "began after", "took"],
        [
            [
                html.escape(s.name),
                _badge(s.state),
                html.escape(duration(s.start)),
                html.escape(duration(s.seconds)),
            ]
            for s in report.stages
        ],
        ["", "", "num", "num"],
    )
    return (
        f"{timeline_svg(report.stages, report.tasks, report.elapsed_seconds)}"
        f'<p class="note">{legend}</p>{stages}'
    )


def _template(report: RunReport) -> str:
    return _facts(
        [
            ("pipeline", esc_name(report.pipeline or "-")),
            ("version", esc_name(report.template_version or "-")),
            ("registry digest", esc_name(report.template_digest or "(local template)")),
            ("template URI", esc_name(report.template_uri or "-", URI_LIMIT)),
            ("pipeline spec digest", esc_name(report.spec_digest)),
        ]
    )


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    shown = esc(text, TEXT_LIMIT if isinstance(value, str) else VALUE_LIMIT)
    return f'<div class="cell">{shown}</div>' if len(shown) > 200 else shown


def _parameters(report: RunReport) -> str:
    if not report.parameters:
        return '<p class="muted">The job holds no parameter values.</p>'
    rows = [[esc_name(k, 100), _value(v)] for k, v in sorted(report.parameters.items())]
    return _table(["parameter", "value"], rows, ["", "value"])


def _datasets(report: RunReport) -> str:
    rows = [
        [
            html.escape(d.kind),
            esc_name(d.path or "(none)", URI_LIMIT),
            _count(d.rows),
            esc_name(d.layout or "-", 60),
            _badge(d.state) if d.state else '<span class="muted">not checked</span>',
        ]
        for d in report.datasets
    ]
    return _table(
        ["dataset", "path", "rows", "layout", "check"], rows, ["", "path", "num", "", ""]
    ) + (
        '<p class="note">Rows and layouts are what the run\'s own dataset checks returned'
        " (every row of every file was validated before training).</p>"
    )


def _steps(report: RunReport) -> str:
    rows = [
        [html.escape(s.stage), _count(s.steps), html.escape(s.how or "-")] for s in report.steps
    ]
    return _table(["stage", "steps", "from"], rows, ["", "num", ""])


def _thin(points: list[Point], limit: int = MAX_CHART_POINTS) -> list[Point]:
    """At most about ``limit`` points: per bucket of steps, its lowest and highest."""
    if len(points) <= limit:
        return points
    size = math.ceil(len(points) / (limit // 2))
    kept: list[Point] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        low = min(bucket, key=lambda p: p.value or 0.0)
        high = max(bucket, key=lambda p: p.value or 0.0)
        kept += sorted({id(p): p for p in (low, high)}.values(), key=lambda p: p.step)
    return kept


def metric_svg(index: int, stage: str, metric: str, points: list[Point]) -> str:
    """One metric's line over the steps (an SVG element); NaN/inf points break the line."""
    width, height = 360, 200
    left, right, top, bottom = 52, 12, 12, 28
    ordered = sorted(points, key=lambda p: p.step)
    finite = [p for p in ordered if p.value is not None]
    steps = [p.step for p in ordered] or [0]
    values = [p.value for p in finite if p.value is not None] or [0.0]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(step: int) -> float:
        return left + plot_w * (step - x0) / (x1 - x0)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - y0) / (y1 - y0))

    segments: list[list[Point]] = [[]]
    for point in ordered:
        if point.value is None:
            segments.append([])
        else:
            segments[-1].append(point)
    colour = STAGE_COLOURS.get(stage, "#1565c0")
    title = f"{STAGE_LABELS.get(stage, stage)}: {metric}"
    parts = [
        f'<svg class="chart" id="chart-{index}" xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{esc_name(title)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafbfc"'
        ' stroke="#dde2ea"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = y0 + (y1 - y0) * fraction
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e3e7ee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" fill="#5b6474"'
            f' text-anchor="end">{html.escape(_number(value))}</text>'
        )
    for step in (x0, x1):
        parts.append(
            f'<text x="{x_of(step):.1f}" y="{height - 10}" font-size="10" fill="#5b6474"'
            f' text-anchor="middle">{step}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 10}" font-size="10" fill="#8a93a3"'
        ' text-anchor="middle">step</text>'
    )
    for segment in segments:
        shown = _thin(segment)
        if len(shown) == 1:
            p = shown[0]
            parts.append(
                f'<circle cx="{x_of(p.step):.1f}" cy="{y_of(p.value or 0.0):.1f}" r="2.5"'
                f' fill="{colour}"/>'
            )
        elif shown:
            coords = " ".join(f"{x_of(p.step):.1f},{y_of(p.value or 0.0):.1f}" for p in shown)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}"'
                ' stroke-width="1.6" stroke-linejoin="round"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _summary_line(s: MetricSummary) -> str:
    goal = "lower" if s.lower_is_better else "higher"
    text = (
        f"first {_number(s.first)} · last {_number(s.last)} · best {_number(s.best)}"
        f" @ step {s.best_step} · last 10%: {s.trend:+.3g} ({trend_word(s)};"
        f" {goal} is better) · {s.points} points"
    )
    if s.non_finite:
        text += f" · {s.non_finite} NaN/inf point(s)"
    return html.escape(text)


def _metrics(report: RunReport) -> str:
    where = esc_name(report.metrics_log or "-", URI_LIMIT)
    if not report.summaries:
        return (
            '<p class="muted">No training metrics were logged for this run (yet): GCPC\'s'
            " reward-model trainer and reinforcer write them as they train.</p>"
            f'<p class="note">metrics log: {where}</p>'
        )
    grouped: dict[tuple[str, str], list[Point]] = {}
    for point in report.points:
        grouped.setdefault((point.stage, point.name), []).append(point)
    rows = []
    figures = []
    for index, s in enumerate(report.summaries):
        label = f"{STAGE_LABELS.get(s.stage, s.stage)}: {s.name}"
        rows.append(
            [
                esc_name(label, 120),
                html.escape(_number(s.first)),
                html.escape(_number(s.last)),
                html.escape(f"{_number(s.best)} @ {s.best_step}"),
                html.escape(f"{s.trend:+.3g} ({trend_word(s)})"),
                _count(s.points),
            ]
        )
        svg = metric_svg(index, s.stage, s.name, grouped.get((s.stage, s.name), []))
        figures.append(
            f"<figure>{svg}<figcaption><strong>{esc_name(label, 120)}</strong><br>"
            f"{_summary_line(s)}</figcaption></figure>"
        )
    table = _table(
        ["metric", "first", "last", "best @ step", "last 10%", "points"],
        rows,
        ["", "num", "num", "num", "", "num"],
    )
    return (
        f'{table}<div class="charts">{"".join(figures)}</div>'
        f'<p class="note">From the metrics log {where}, as <code>make metrics</code> writes it.'
        " Losses, errors, KL and perplexity are better lower; everything else higher.</p>"
    )


def _failure(report: RunReport) -> str:
    failure = report.failure
    if failure is None:
        if report.state == "SUCCEEDED":
            return "<p>The run succeeded: nothing failed.</p>"
        if not report.ended:
            return '<p class="muted">The run has not ended; nothing has failed so far.</p>'
        return '<p class="muted">No failure recorded.</p>'
    where = ""
    if failure.task:
        where = f" at <strong>{esc_name(failure.task)}</strong>"
        if failure.stage:
            where += f" ({esc_name(failure.stage, 60)})"
    return (
        f'<div class="fail"><p>{_badge(report.state)} error[{esc_name(failure.code, 40)}]{where}'
        f"</p><pre>{esc(failure.message, TEXT_LIMIT)}</pre>"
        f'<div class="fix"><strong>fix:</strong> {esc(failure.fix, TEXT_LIMIT)}</div></div>'
    )


def _eval(report: RunReport) -> str:
    evaluation = report.evaluation
    if evaluation is None:
        return '<p class="muted">This run had no eval dataset (dataset.eval_dataset).</p>'
    body = _facts(
        [
            ("eval dataset", esc_name(evaluation.dataset, URI_LIMIT)),
            ("predictions", esc_name(evaluation.source or "-", URI_LIMIT)),
        ]
    )
    for number, sample in enumerate(evaluation.samples, 1):
        if sample.raw:
            body += (
                f'<div class="sample"><div><h3>row {number} (not a layout this report'
                f' reads)</h3><div class="text">{esc(sample.raw, TEXT_LIMIT)}</div></div>'
                "<div></div></div>"
            )
            continue
        body += (
            f'<div class="sample"><div><h3>prompt {number}</h3>'
            f'<div class="text">{esc(sample.prompt, TEXT_LIMIT)}</div></div>'
            f"<div><h3>tuned model's response</h3>"
            f'<div class="text">{esc(sample.response, TEXT_LIMIT)}</div></div></div>'
        )
    if evaluation.note:
        body += f'<p class="note">{esc(evaluation.note, TEXT_LIMIT)}</p>'
    return body


def render(report: RunReport) -> str:
    """The whole page, one self-contained HTML document."""
    bodies = {
        "run": _run(report),
        "timeline": _timeline(report),
        "template": _template(report),
        "parameters": _parameters(report),
        "datasets": _datasets(report),
        "steps": _steps(report),
        "metrics": _metrics(report),
        "failure": _failure(report),
        "eval": _eval(report),
    }
    nav = "".join(f'<a href="#{i}">{html.escape(h)}</a>' for i, h in SECTIONS)
    sections = "".join(_section(i, h, bodies[i]) for i, h in SECTIONS)
    title = esc_name(report.job_id or report.job_name, 200)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_policy()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Run report: {title}</title>"
        f"<script>{WATCH_SCRIPT}</script>"
        f"<style>{STYLE}</style></head><body>"
        f"<header><h1>RLHF run {title} {_badge(report.state)}</h1>"
        f'<div class="sub">template {esc_name(report.template_version or "?", 80)}'
        f" · report made {esc_name(report.generated, 40)}</div></header>"
        f"<nav>{nav}</nav><main>{sections}</main>"
        "<footer>Made by <code>rlhf report</code>. Self-contained: this file loads"
        " nothing.</footer>"
        f"<script>{MEASURE_SCRIPT}</script></body></html>\n"
    )


def write(report: RunReport, path: Path) -> Path:
    """Renders the report and writes it whole (beside its target, then renamed over it).

    Raises:
        DataError: the disk is full or the file cannot be written; any earlier file
            stays as it was, and no partial file is left.
    """
    replace_whole(path, render(report).encode("utf-8"), DataError)
    return path
