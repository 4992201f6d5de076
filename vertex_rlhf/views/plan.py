"""What a run books: ``rlhf plan``, and the lines a terminal reads before a submit."""

from __future__ import annotations

from typing import Any

from vertex_rlhf.template.plan import Plan, display_task
from vertex_rlhf.views.text import outside


def _machines_and_steps(plan: Plan) -> list[str]:
    lines = [f"    {stage:<24} {spec}" for stage, spec in plan.machines.items()]
    lines.append("  steps:")
    for stage, count in plan.steps.items():
        shown = count.steps if count.steps is not None else "at run time"
        lines.append(f"    {stage:<24} {shown}  ({count.source})")
    return lines


def render_plan(plan: Plan) -> str:
    """The plan as ``rlhf plan`` prints it."""
    t = plan.template
    lines = [
        f"Plan: {plan.model} on {plan.accelerator_type}, pipeline in {plan.region}",
        f"  template: {t['name']} {t['version']} ({t['digest']})",
        f"  machines, from {plan.machine_source}:",
        *_machines_and_steps(plan),
        "  stages:",
    ]
    for stage, runs, why in plan.stages:
        lines.append(f"    {stage:<36} {'runs' if runs else 'skipped':<8} {why}")
    lines.append("  cache:")
    cache = sorted((display_task(task), verdict) for task, verdict in plan.cache)
    width = max((len(task) for task, _ in cache), default=0)
    lines += [f"    {task:<{width}}  {verdict}" for task, verdict in cache]
    return "\n".join(lines)


def render_booking(plan: Plan, template: Any, project: str, job_id: str) -> str:
    """The lines a terminal reads before confirming a submit (as ``terraform apply``).

    Args:
        plan: the run's plan (model, accelerator, machines, steps).
        template: the ``TemplateRef`` that is submitted (its digest is the one run).
        project: the project the run is booked in.
        job_id: the id the job will get.
    """
    lines = [
        f"This submit books a run in project {outside(project, one_line=True)}"
        f" ({outside(plan.region, one_line=True)}):",
        f"  model:       {outside(plan.model, one_line=True)} on {plan.accelerator_type}",
        f"  machines:    from {plan.machine_source}",
        *_machines_and_steps(plan),
        f"  template:    {outside(template.name, one_line=True)}"
        f" {outside(template.version, one_line=True)} ({template.digest or 'digest unknown'})",
        f"  job id:      {outside(job_id, one_line=True)}",
    ]
    return "\n".join(lines)


def render_schedule_booking(plan: Plan, template: Any, project: str, name: str, cron: str) -> str:
    """The lines a terminal reads before confirming a schedule: what each run books."""
    lines = [
        f"This schedule books a run in project {outside(project, one_line=True)}"
        f" ({outside(plan.region, one_line=True)}) at every {outside(cron, one_line=True)}"
        " (one at a time):",
        f"  model:       {outside(plan.model, one_line=True)} on {plan.accelerator_type}",
        f"  machines:    from {plan.machine_source}",
        *_machines_and_steps(plan),
        f"  template:    {outside(template.name, one_line=True)}"
        f" {outside(template.version, one_line=True)} (pinned to its registry digest when"
        " scheduled)",
        f"  schedule:    {outside(name, one_line=True)}",
    ]
    return "\n".join(lines)


def confirm(shown: str, question: str = "Submit it?") -> bool:
    """Shows a terminal what it is about to book and asks to go on (default: no)."""
    import sys

    print(shown, file=sys.stderr)
    print(f"{question} [y/N] (--yes or YES=1 skips this question) ", end="", file=sys.stderr)
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return answer.strip().lower() in ("y", "yes")


def confirm_booking(plan: Plan, template: Any, project: str, job_id: str) -> bool:
    """Shows a terminal what the run books and asks to go on (default: no)."""
    return confirm(render_booking(plan, template, project, job_id))
