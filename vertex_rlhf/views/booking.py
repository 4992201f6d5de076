"""What a real submit books, shown before it asks to go on (as ``terraform apply`` does)."""

from __future__ import annotations

from typing import Any

from vertex_rlhf.views.text import outside


def render_booking(plan: Any, template: Any, project: str, job_id: str) -> str:
    """The lines a terminal reads before confirming a submit.

    Args:
        plan: the run's ``template.plan.Plan`` (model, accelerator, machines, steps).
        template: the ``TemplateRef`` that is submitted (its digest is the one run).
        project: the project the run is booked in.
        job_id: the id the job will get.
    """
    lines = [
        f"This submit books a run in project {outside(project, one_line=True)}"
        f" ({outside(plan.region, one_line=True)}):",
        f"  model:       {outside(plan.model, one_line=True)} on {plan.accelerator_type}",
        f"  machines:    from {plan.machine_source}",
    ]
    lines += [f"    {stage:<24} {spec}" for stage, spec in plan.machines.items()]
    lines.append("  steps:")
    for name, count in plan.steps.items():
        shown = count.steps if count.steps is not None else "at run time"
        lines.append(f"    {name:<24} {shown}  ({count.source})")
    lines.append(
        f"  template:    {outside(template.name, one_line=True)}"
        f" {outside(template.version, one_line=True)} ({template.digest or 'digest unknown'})"
    )
    lines.append(f"  job id:      {outside(job_id, one_line=True)}")
    return "\n".join(lines)
