"""``rlhf metrics`` and ``compare``: a run's training metrics, and runs side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.usecases import metrics
from vertex_rlhf.views.text import name, outside, path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the metrics' subcommands."""
    p = sub.add_parser("metrics", help="a run's training metrics: JSONL log, summary, PNG")
    flags.job_args(p)
    p.add_argument(
        "--metrics-log",
        type=values.output_path("--metrics-log"),
        help="JSONL metrics log (default runs/JOB_ID.jsonl)",
    )
    p.add_argument(
        "--png",
        type=values.output_path("--png"),
        help="chart to write (default: the log's name with .png)",
    )
    flags.api_timeout(p)
    p.set_defaults(func=run_metrics)

    p = sub.add_parser("compare", help="compare runs side by side: table and PNG")
    flags.common(p)
    p.add_argument(
        "jobs", nargs="*", metavar="JOB", help="job ids or resource names (and overrides)"
    )
    p.add_argument(
        "--jobs",
        dest="jobs_text",
        type=values.shell_words("--jobs"),
        default=[],
        help="job ids separated by spaces, shell quoting rules (make JOBS=)",
    )
    p.add_argument(
        "--last",
        type=values.count("--last", minimum=0),  # the range is compare's (LAST=1..10)
        help="compare the newest N runs of --env instead",
    )
    p.add_argument(
        "--env",
        default="dev",
        type=values.environment_spec("--env"),
        help="environment whose project/region to use",
    )
    p.add_argument(
        "--png", type=values.output_path("--png"), help="chart to write (default runs/compare.png)"
    )
    flags.api_timeout(p)
    p.set_defaults(func=run_compare, overrides=[])


def run_metrics(args: argparse.Namespace) -> int:
    """Reads a run's TensorBoard event files into its metrics log; prints a summary; draws it."""
    from vertex_rlhf.views import charts, tables

    found = metrics.read_metrics(flags.setting(args, ("vertex_ai",)), args.job, args.metrics_log)
    for warning in found.warnings:
        print(f"warning: {outside(warning)}", file=sys.stderr)
    print(f"{name(found.job_name, 1000)}: {found.added} new step record(s) in {path(found.log)}")
    print(tables.render_summary(found.summaries))
    png = Path(args.png or found.log.with_suffix(".png"))
    if charts.metrics_png(found.points, png, f"Training metrics of {found.job_id}"):
        print(f"  chart: {path(png)}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Compares runs side by side: one table and one PNG overlaying their metrics."""
    from vertex_rlhf.views import charts, comparison, tables

    # KEY=VALUE items are overrides; job ids and resource names never hold "=".
    args.overrides = [*[j for j in args.jobs if "=" in j], *args.overrides]
    jobs = [*[j for j in args.jobs if "=" not in j], *args.jobs_text]
    runs = metrics.compare(flags.setting(args, ("vertex_ai",)), jobs, args.last)
    print(tables.render_table(comparison.comparison_rows(runs)))
    png = Path(args.png or "runs/compare.png")
    if charts.comparison_png([(r.job_id, r.points) for r in runs], png, "Runs compared"):
        print(f"  chart: {path(png)}")
    return 0
