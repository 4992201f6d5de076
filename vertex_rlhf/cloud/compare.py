"""Runs side by side: template, differing parameters, data, steps, stage times, metrics.

``run_facts`` turns one job resource (and its metric points) into plain facts (pure);
``gather`` reads the jobs and their event files. ``views.comparison`` lines the facts of
several runs up into one table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vertex_rlhf.cloud import metrics
from vertex_rlhf.cloud.monitor import STAGES, job_status, list_runs
from vertex_rlhf.cloud.status import parse_time
from vertex_rlhf.cloud.submission import sanitize_label
from vertex_rlhf.cloud.vertex import VertexTarget, target_of
from vertex_rlhf.errors import ConfigError

MAX_RUNS = 10
# The dataset checks of the compiled template, by task name (input:kind wins when present).
DATASET_TASKS = {
    "validate-dataset": "preference",
    "validate-dataset-2": "prompt",
    "validate-dataset-3": "eval",
}
STEP_OUTPUTS = ("reward_model_train_steps", "reinforcement_learning_train_steps")


@dataclass
class RunFacts:
    """What one run was and did."""

    name: str
    job_id: str
    state: str
    created: str
    version: str
    digest: str
    spec_digest: str
    parameters: dict[str, Any]
    rows: dict[str, int]
    steps: dict[str, int]
    stage_seconds: dict[str, float | None]
    total_seconds: float | None
    summaries: list[metrics.MetricSummary] = field(default_factory=list)
    points: list[metrics.Point] = field(default_factory=list)


def _stage_seconds(job: dict[str, Any], now: datetime) -> dict[str, float | None]:
    """Each stage's wall time: its first task's start to its last task's end."""
    stages = {t.name: t.stage for t in job_status(job, now).tasks}
    spans: dict[str, list[datetime]] = {}
    for detail in job.get("job_detail", {}).get("task_details", []):
        stage = stages.get(detail.get("task_name", ""))
        start = parse_time(detail.get("start_time"))
        if stage is None or start is None:
            continue
        end = parse_time(detail.get("end_time")) or parse_time(job.get("end_time")) or now
        spans.setdefault(stage, []).extend([start, end])
    return {
        name: (max(spans[name]) - min(spans[name])).total_seconds() if name in spans else None
        for name, _ in STAGES
    }


def run_facts(
    job: dict[str, Any], points: list[metrics.Point], now: datetime | None = None
) -> RunFacts:
    """The facts of one run.

    Args:
        job: the job as ``PipelineJob.to_dict``.
        points: its training-metric points.
        now: the current time, for a run still going.
    """
    now = now or datetime.now(timezone.utc)
    status = job_status(job, now)
    labels = job.get("labels") or {}
    template_uri = job.get("template_uri") or ""
    digest = template_uri.rsplit("/", 1)[-1] if "/sha256:" in template_uri else ""
    spec = json.dumps(job.get("pipeline_spec") or {}, sort_keys=True).encode()
    rows, steps = {}, {}
    for detail in job.get("job_detail", {}).get("task_details", []):
        name = detail.get("task_name", "")
        meta = (detail.get("execution") or {}).get("metadata") or {}
        kind = meta.get("input:kind") or DATASET_TASKS.get(name)
        if kind and isinstance(meta.get("output:rows"), (int, float)):
            rows[str(kind)] = int(meta["output:rows"])
        for key in STEP_OUTPUTS:
            if isinstance(meta.get(f"output:{key}"), (int, float)):
                steps[key] = int(meta[f"output:{key}"])
    return RunFacts(
        name=job.get("name", ""),
        job_id=job.get("name", "").rsplit("/", 1)[-1],
        state=status.state,
        created=job.get("create_time", ""),
        version=labels.get("pipeline-version")
        or (job.get("template_metadata") or {}).get("version", "")
        or "?",
        digest=digest,
        spec_digest="sha256:" + hashlib.sha256(spec).hexdigest()[:12],
        parameters=dict((job.get("runtime_config") or {}).get("parameter_values") or {}),
        rows=rows,
        steps=steps,
        stage_seconds=_stage_seconds(job, now),
        total_seconds=status.elapsed_seconds,
        summaries=metrics.summarize(points),
        points=points,
    )


def job_names(default: VertexTarget, jobs: list[str]) -> list[str]:
    """Checks job ids / resource names and returns the full names, without repeats.

    Raises:
        ConfigError: a bad id (all listed), none given, or more than ``MAX_RUNS``.
    """
    names, problems = [], []
    for job in jobs:
        try:
            name = default.job_name(job)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if name not in names:
            names.append(name)
    if problems:
        raise ConfigError(problems)
    if not names:
        raise ConfigError(['name the runs to compare: JOBS="id1 id2" or LAST=N (runs of ENV)'])
    if len(names) > MAX_RUNS:
        raise ConfigError([f"{len(names)} runs to compare; at most {MAX_RUNS} fit one table"])
    return names


def last_runs(target: VertexTarget, pipeline: str, env: str, count: int) -> list[str]:
    """The ``count`` newest runs of ``pipeline`` labelled with environment ``env``.

    Raises:
        ConfigError: ``count`` out of range, or no such runs.
    """
    if not 1 <= count <= MAX_RUNS:
        raise ConfigError([f"LAST={count}: compare between 1 and {MAX_RUNS} runs"])
    label = sanitize_label(env)
    runs = [r for r in list_runs(target, pipeline, 100) if r.environment == label]
    if not runs:
        raise ConfigError(
            [f"no runs of {pipeline} with environment={env} in {target.parent}"],
        )
    return [f"{target.parent}/pipelineJobs/{r.job_id}" for r in runs[:count]]


def gather(default: VertexTarget, names: list[str]) -> list[RunFacts]:
    """Reads each job and its event files, and returns their facts in the order given.

    A job named twice is read and compared once.
    """
    facts = []
    for name in dict.fromkeys(names):
        job = metrics.read_job(target_of(name, default), name)
        sources, _ = metrics.metric_sources(job)
        with metrics.EventFiles() as files:
            points = [p for source in sources for p in files.changed_points(source)]
        unique = {(p.stage, p.name, p.step): p for p in points}
        facts.append(run_facts(job, list(unique.values())))
    return facts
