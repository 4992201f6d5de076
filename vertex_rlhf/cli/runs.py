"""``rlhf submit``, ``monitor``, ``runs`` and ``cancel``: runs on Vertex AI."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.usecases import runs
from vertex_rlhf.usecases.setting import Setting, load_setting
from vertex_rlhf.views.following import resume_hint, show_watch, submitted_lines
from vertex_rlhf.views.parameters import warning_lines

if TYPE_CHECKING:
    from vertex_rlhf.cloud.vertex import VertexTarget


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the runs' subcommands."""
    p = sub.add_parser("submit", help="submit a run of an environment to Vertex AI")
    flags.common(p)
    flags.env_args(p)
    p.add_argument("--version", help="registry version (tag or sha256:...) to run")
    p.add_argument("--job-id", help="reuse this job id (to retry a submit by hand)")
    p.add_argument("--dry-run", action="store_true", help="print the request; send nothing")
    p.add_argument("--wait", action="store_true", help="follow the run to its end")
    p.add_argument(
        "--yes",
        action="store_true",
        help="submit without asking (a terminal is asked to confirm what the run books)",
    )
    flags.watch_args(p)
    p.set_defaults(func=run_submit)

    p = sub.add_parser("monitor", help="follow a run to its end and report")
    flags.job_args(p)
    flags.watch_args(p)
    p.set_defaults(func=run_monitor)

    p = sub.add_parser("runs", help="list recent runs with state and version")
    flags.common(p)
    flags.env_args(p)
    p.add_argument(
        "--limit", type=values.count("--limit"), default=20, help="how many runs at most"
    )
    flags.api_timeout(p)
    p.set_defaults(func=run_runs)

    p = sub.add_parser("cancel", help="cancel a run")
    flags.job_args(p)
    flags.api_timeout(p)
    p.set_defaults(func=run_cancel)


def _check_watch_flags(args: argparse.Namespace, job: str | None) -> None:
    """Refuses a bad --metrics-log before anything is sent."""
    # Before a submit the job id is not known yet: check where its default log would go.
    log = runs.metrics_log(job or "JOB_ID", args.metrics_log)
    flags.check_flags([values.output_problem(log, "--metrics-log", False)])


def run_submit(args: argparse.Namespace) -> int:
    """Builds the PipelineJob from params/ENV.yaml and submits it (or prints it)."""
    import yaml

    from vertex_rlhf.config import names

    if args.wait:
        _check_watch_flags(args, None)
    overrides = list(args.overrides)
    if args.version is not None:
        problem = names.tag_problem(args.version, digest_ok=True)
        flags.check_flags([f"--version: {problem}" if problem else None])
        overrides.append(f"vertex_ai.template_version={args.version}")
    setting = load_setting(args.env, overrides, args.params_dir, args.compiled_dir)
    order = runs.SubmitOrder(job_id=args.job_id, dry_run=args.dry_run)
    with runs.prepared(setting, order) as ready:
        for line in [*ready.notes, *warning_lines(ready.warnings)]:
            print(line, file=sys.stderr)
        if args.dry_run:
            print(yaml.safe_dump(runs.dry_run(setting, ready), sort_keys=False), end="")
            print("dry run: nothing was sent", file=sys.stderr)
            return 0
        if not args.yes and sys.stdin.isatty() and not _confirmed(setting, ready):
            print("not submitted: nothing was sent", file=sys.stderr)
            return 1
        submitted = runs.send(ready)
    print(submitted_lines(submitted.name, submitted.console_url))
    if not args.wait:
        print(f"  follow it with: {resume_hint(submitted.name, args.env, args.overrides)}")
        return 0
    return follow(submitted.target, submitted.name, args)


def _confirmed(setting: Setting, ready: runs.Prepared) -> bool:
    """Shows a terminal what the run books and asks to go on (default: no)."""
    from vertex_rlhf.views.plan import confirm_booking

    request = ready.request
    project = setting.params.vertex_ai.project_id
    return confirm_booking(runs.booking(setting), request.template, project, request.job_id)


def follow(target: VertexTarget, job: str, args: argparse.Namespace) -> int:
    """Watches a job to its end and reports; Ctrl-C stops watching, never cancels.

    On a terminal a live view replaces the progress lines; the report follows either way.
    """
    from vertex_rlhf.cloud import monitor

    log = runs.metrics_log(job, args.metrics_log)
    _check_watch_flags(args, job)
    watch = runs.Watch(log, args.poll_interval, args.timeout)
    status = show_watch(
        job,
        target.console_url(target.job_name(job)),
        log,
        lambda out, callback: runs.follow(target, job, watch, out, callback),
        resume_hint(job, args.env, args.overrides),
        args.timeout,
    )
    if status is None:
        return 130
    error = None if status.timed_out else monitor.final_error(status)
    if error:
        raise error
    return 0


def run_monitor(args: argparse.Namespace) -> int:
    """Follows a job to its end with a live progress line and a final report."""
    target, job = runs.locate(flags.setting(args, ("vertex_ai",)), args.job)
    return follow(target, job, args)


def run_runs(args: argparse.Namespace) -> int:
    """Lists recent runs of the pipeline with state and version."""
    from vertex_rlhf.views import listings

    found = runs.list_runs(flags.setting(args, ("vertex_ai",)), args.limit)
    print(listings.runs_table(found.runs, f"(no runs of {found.pipeline} in {found.parent})"))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    """Cancels a run."""
    job = runs.cancel(flags.setting(args, ("vertex_ai",)), args.job)
    print(f"Cancel requested for {job}; it stops after its running tasks are cancelled.")
    return 0
