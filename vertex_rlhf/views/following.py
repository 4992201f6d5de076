"""Following a run on a console: the live view (or plain lines), then the final report.

Both faces (``rlhf monitor``/``submit --wait`` and ``scripts/main.py --monitor``/``--wait``)
show a watch the same way; the watch itself is theirs to run (``usecases.runs.follow``).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vertex_rlhf.views.text import name, path

if TYPE_CHECKING:
    from vertex_rlhf.cloud.status import JobStatus

# What runs the watch: given where lines go and what to call on a change, the last status.
Watcher = Callable[[TextIO, "Callable[[JobStatus], None] | None"], "JobStatus"]


def resume_hint(job: str, env: str, overrides: Sequence[str] = ()) -> str:
    """The make command that follows ``job`` again, with the same environment and overrides."""
    command = f"make monitor JOB={shlex.quote(job.rsplit('/', 1)[-1])} ENV={shlex.quote(env)}"
    if overrides:
        command += " OVERRIDES=" + shlex.quote(" ".join(shlex.quote(o) for o in overrides))
    return command


def submitted_lines(job: str, console_url: str) -> str:
    """What both faces print once a run is created."""
    return f"Submitted {name(job, 1000)}\n  console: {name(console_url, 1000)}"


def show_watch(
    job: str, console_url: str, log: Path, watch: Watcher, resume: str, timeout: float | None
) -> JobStatus | None:
    """Runs ``watch`` under a live view (a terminal) or plain lines, then prints the report.

    Ctrl-C stops watching (the run goes on) and prints how to resume.

    Returns:
        The last status, or None when the user stopped watching.
    """
    from vertex_rlhf.views import live, run_report  # rich: only when a run is followed

    print(f"Following {job}\n  console: {console_url}")
    try:
        with live.monitor_display(job, log) as display:
            # The metrics follower writes through the display, not past it (a live view
            # redraws).
            status = watch(display.out, display.callback)
    except KeyboardInterrupt:
        print(f"\nStopped watching; the job keeps running. Resume with: {resume}", file=sys.stderr)
        return None
    print(run_report.report(status))
    print(f"  metrics log: {path(log)}")
    if status.timed_out:
        print(f"Stopped watching after {timeout or 0:.0f}s; resume with: {resume}", file=sys.stderr)
    return status
