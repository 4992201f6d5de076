"""The report of a run (final or current): state, duration, stages, every task's state
and time, the failing task and its error, the outputs.

Names, states, the error and output values came from the server: each is shown through
``views.text``, escaped and bounded.
"""

from __future__ import annotations

from vertex_rlhf.cloud.monitor import NOTIFICATION, OUTPUTS
from vertex_rlhf.cloud.status import JobStatus
from vertex_rlhf.views.text import duration, outside
from vertex_rlhf.views.text import name as outside_name


def report(status: JobStatus) -> str:
    """A human-readable report of a job's status (``monitor.job_status``)."""
    lines = [
        f"Pipeline job {outside_name(status.job_id)}: {outside_name(status.state)}"
        f" ({status.progress}%, {duration(status.elapsed_seconds)})"
    ]
    if status.console_url:
        lines.append(f"  console: {outside_name(status.console_url, 1000)}")
    lines.append(
        "  stages: " + " | ".join(f"{stage} {state}" for stage, state in status.stages.items())
    )
    # The exit task last: it runs after the others.
    leaves = sorted((t for t in status.tasks if t.leaf), key=lambda t: t.stage == NOTIFICATION)
    shown = [(outside_name(t.name), outside_name(t.state), t.seconds) for t in leaves]
    width = max((len(task) for task, _, _ in shown), default=0)
    for task, state, seconds in shown:
        lines.append(f"    {task:<{width}}  {state:<13} {duration(seconds)}")
    if status.failed_task:
        lines.append(f"  failed task: {outside_name(status.failed_task)} ({status.failed_stage})")
    if status.error:
        lines.append(f"  error: {outside(status.error)}")
    for key in OUTPUTS:
        lines.append(f"  {key}: {outside_name(status.outputs.get(key) or '(none)', 1000)}")
    return "\n".join(lines)
