"""``rlhf schedule``, ``schedules``, ``schedule-pause``, ``schedule-resume`` and
``schedule-delete``: Vertex AI schedules of a published template version."""

from __future__ import annotations

import argparse
import json
import sys

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.usecases import schedules
from vertex_rlhf.views.text import outside

NAME_HELP = (
    "the schedule's name: one schedule per environment and name"
    f" (default {schedules.DEFAULT_NAME!r}; 1-30 of a-z, 0-9 and -)"
)


def _name(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--name",
        type=values.schedule_name("--name (make NAME)"),
        required=required,
        default=None if required else schedules.DEFAULT_NAME,
        help=NAME_HELP,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the schedules' subcommands."""
    p = sub.add_parser(
        "schedule",
        help="create or update a Vertex AI schedule of a published template version",
    )
    flags.common(p)
    flags.env_args(p)
    p.add_argument(
        "--cron",
        required=True,
        type=values.cron("--cron (make CRON)"),
        help="when: five fields 'minute hour day-of-month month day-of-week', optionally after"
        " TZ=Area/City or CRON_TZ=Area/City (e.g. 'TZ=Europe/Paris 0 3 * * 1'; UTC without)",
    )
    p.add_argument(
        "--version",
        type=values.version("--version (make VERSION)"),
        help="published version (tag or sha256:...); default vertex_ai.template_version,"
        " else compiled/'s current version",
    )
    _name(p)
    p.add_argument("--dry-run", action="store_true", help="show what each run books; send nothing")
    p.add_argument(
        "--yes",
        action="store_true",
        help="schedule without asking (a terminal is asked to confirm what each run books)",
    )
    flags.api_timeout(p)
    p.set_defaults(func=run_schedule)

    p = sub.add_parser("schedules", help="list the schedules of an environment")
    flags.common(p)
    flags.env_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    flags.api_timeout(p)
    p.set_defaults(func=run_schedules)

    for verb, function, what in (
        ("pause", run_pause, "pause a schedule (no new runs; a running one goes on)"),
        ("resume", run_resume, "resume a paused schedule (missed runs are skipped)"),
        ("delete", run_delete, "delete a schedule (the runs it started go on)"),
    ):
        p = sub.add_parser(f"schedule-{verb}", help=what)
        flags.common(p)
        flags.env_args(p)
        _name(p, required=True)
        flags.api_timeout(p)
        p.set_defaults(func=function)


def run_schedule(args: argparse.Namespace) -> int:
    """Creates the environment's schedule, or updates it when it exists."""
    from vertex_rlhf.usecases import runs
    from vertex_rlhf.views.plan import confirm, render_schedule_booking
    from vertex_rlhf.views.schedules import scheduled_lines

    setting = flags.setting(args)
    order = schedules.ScheduleOrder(args.cron, args.name, args.version)
    # Every run of a schedule books GPUs: it is shown (and, on a terminal, confirmed) first,
    # as a submit is, before any request.
    if args.dry_run or (not args.yes and sys.stdin.isatty()):
        shown = render_schedule_booking(
            runs.booking(setting),
            schedules.booked_template(setting, args.version),
            setting.params.vertex_ai.project_id,
            args.name,
            str(args.cron),
        )
        if args.dry_run:
            print(shown)
            print("dry run: nothing was sent", file=sys.stderr)
            return 0
        if not confirm(shown, "Schedule it?"):
            print("not scheduled: nothing was sent", file=sys.stderr)
            return 1
    result = schedules.schedule(setting, order)
    for line in result.warnings:
        print(outside(line if line.startswith("note:") else f"warning: {line}"), file=sys.stderr)
    print(scheduled_lines(result, setting.spec))
    return 0


def run_schedules(args: argparse.Namespace) -> int:
    """Lists the environment's schedules with their last run."""
    from vertex_rlhf.views.schedules import schedules_json, schedules_table

    listing = schedules.list_schedules(flags.setting(args, ("vertex_ai",)))
    if args.json:
        print(json.dumps(schedules_json(listing), indent=2))
    else:
        print(schedules_table(listing))
    return 0


def run_pause(args: argparse.Namespace) -> int:
    """Pauses a schedule."""
    from vertex_rlhf.views.schedules import changed_line

    print(changed_line(schedules.pause(flags.setting(args, ("vertex_ai",)), args.name)))
    return 0


def run_resume(args: argparse.Namespace) -> int:
    """Resumes a schedule."""
    from vertex_rlhf.views.schedules import changed_line

    print(changed_line(schedules.resume(flags.setting(args, ("vertex_ai",)), args.name)))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Deletes a schedule."""
    from vertex_rlhf.views.schedules import changed_line

    print(changed_line(schedules.delete(flags.setting(args, ("vertex_ai",)), args.name)))
    return 0
