"""``rlhf report``: a run's report as one self-contained HTML file to open and share."""

from __future__ import annotations

import argparse
import sys

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.usecases import report, runs
from vertex_rlhf.views.text import name, outside, path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the ``report`` subcommand."""
    p = sub.add_parser(
        "report", help="a run's report: one self-contained HTML file (runs/JOB_ID.html)"
    )
    flags.job_args(p)
    p.add_argument(
        "--output",
        type=values.output_path("--output"),
        help="the HTML file to write (default runs/JOB_ID.html)",
    )
    p.add_argument(
        "--metrics-log",
        type=values.output_path("--metrics-log"),
        help="JSONL metrics log to sync and read (default runs/JOB_ID.jsonl, as make metrics)",
    )
    p.add_argument(
        "--samples",
        type=values.count("--samples", 1, report.MAX_SAMPLE_ROWS),
        default=report.SAMPLE_ROWS,
        help=f"eval prompts to show with the tuned model's responses (default"
        f" {report.SAMPLE_ROWS})",
    )
    flags.api_timeout(p)
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Reads the run, its metrics and eval sample; writes the page whole."""
    from vertex_rlhf.views import report_html

    setting = flags.setting(args, ("vertex_ai",))
    # The job is checked (config/names.py) before anything is sent or named after it.
    _, job_name = runs.locate(setting, args.job)
    output = args.output or report.default_output(job_name.rsplit("/", 1)[-1])
    flags.check_flags([values.output_problem(output, "--output")])
    found = report.build(setting, args.job, args.metrics_log, args.samples)
    for warning in found.warnings:
        print(f"warning: {outside(warning)}", file=sys.stderr)
    report_html.write(found, output)
    print(f"{name(found.job_name, 1000)}: {name(found.state)} ({found.progress}%)")
    print(f"  report: {path(output)}")
    return 0
