"""Follow a pipeline job: status, progress, a final report, and a JSONL metrics log.

``job_status`` is a pure function over the job resource (as ``PipelineJob.to_dict``
gives it) to a ``JobStatus`` record (``cloud.status``); ``PipelineMonitor`` polls with a
backoff, survives transient API errors and calls back on every change.
``views.run_report`` draws the report people read.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from vertex_rlhf.cloud import calls
from vertex_rlhf.cloud.status import JobStatus, RunRow, TaskStatus, parse_time
from vertex_rlhf.cloud.vertex import VertexTarget, pipeline_service, read_retry
from vertex_rlhf.data.writes import append_lines
from vertex_rlhf.errors import DataError, PipelineError, RLHFError, TrainingError
from vertex_rlhf.views.text import duration, outside
from vertex_rlhf.views.text import name as outside_name

# Stages a person follows, with the share of a typical run's time they take.
STAGES = (
    ("validation", 5),
    ("reward model", 40),
    ("reinforcement learning", 45),
    ("inference", 5),
    ("upload/deploy", 5),
)
VALIDATION = "validation"
# Tasks whose stage is known by name; others inherit the stage of their parent graph.
TASK_STAGES = {
    "validate-dataset": VALIDATION,
    "validate-dataset-2": VALIDATION,
    "validate-dataset-3": VALIDATION,
    "compute-steps": VALIDATION,
    "validate-pipeline": VALIDATION,
    "rlhf-preprocessor": VALIDATION,
    "reward-model-graph": "reward model",
    "reinforcement-learning-graph": "reinforcement learning",
    "condition-1": "inference",
    "infer-eval-template": "inference",
    "llm-deployment-graph": "upload/deploy",
    # The exit handler's exit task, beside the body: it mails the outcome once the run's
    # tasks have ended. Not a stage of the work (no share of the progress).
    "vertex-pipelines-notification-email": "notification",
}
NOTIFICATION = "notification"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
# Job states of the installed client; anything else (a newer state arriving as a bare
# integer, or UNSPECIFIED for a name the client could not parse) is shown and bounded.
KNOWN_STATES = TERMINAL | {"QUEUED", "PENDING", "RUNNING", "CANCELLING", "PAUSED"}
NEVER_RAN = {"SKIPPED", "NOT_TRIGGERED"}
OUTPUTS = ("model_resource_name", "endpoint_resource_name")


def short_state(state: str | int | None) -> str:
    """A job or task state as a name (``SUCCEEDED``; ``UNKNOWN(n)`` for an integer the
    client does not know)."""
    if isinstance(state, int) and not isinstance(state, bool):
        return f"UNKNOWN({state})"
    return str(state or "").removeprefix("PIPELINE_STATE_") or "UNKNOWN"


def _seconds(start: str | None, end: str | None, now: datetime) -> float | None:
    begun = parse_time(start)
    if begun is None:
        return None
    return ((parse_time(end) or now) - begun).total_seconds()


def _stage_of(task: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str | None:
    seen = set()
    while task and task.get("task_id") not in seen:
        seen.add(task.get("task_id"))
        stage = TASK_STAGES.get(task.get("task_name", ""))
        if stage:
            return stage
        task = by_id.get(task.get("parent_task_id", ""), {})
    return None


def _stage_state(states: list[str]) -> str:
    if not states:
        return "pending"
    if "FAILED" in states:
        return "failed"
    if any(s in ("RUNNING", "PENDING", "CANCEL_PENDING", "CANCELLING") for s in states):
        return "running"
    if all(s in ("SKIPPED", "NOT_TRIGGERED") for s in states):
        return "skipped"
    if all(s in ("SUCCEEDED", "SKIPPED", "NOT_TRIGGERED") for s in states):
        return "succeeded"
    return "cancelled" if "CANCELLED" in states else "pending"


def job_status(job: dict[str, Any], now: datetime | None = None) -> JobStatus:
    """Summarizes a job resource for people and callbacks.

    Args:
        job: the job as ``PipelineJob.to_dict(job, use_integers_for_enums=False)``.
        now: the current time, for the elapsed time of a running job.

    Returns:
        The status: state, progress, stages, tasks, the failed task and error, the
        elapsed time and outputs (``cloud.status.JobStatus``).
    """
    now = now or datetime.now(timezone.utc)
    state = short_state(job.get("state", ""))
    details = job.get("job_detail", {}).get("task_details", [])
    by_id = {t.get("task_id", ""): t for t in details}
    children = {t.get("parent_task_id") for t in details}
    tasks: list[TaskStatus] = []
    task_outputs: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Any] = {}
    stage_states: dict[str, list[str]] = {name: [] for name, _ in STAGES}
    for detail in details:
        name = detail.get("task_name", "")
        task_state = short_state(detail.get("state", "STATE_UNSPECIFIED"))
        stage = _stage_of(detail, by_id)
        if stage in stage_states:
            stage_states[stage].append(task_state)
        metadata = (detail.get("execution") or {}).get("metadata") or {}
        produced = {k[len("output:") :]: v for k, v in metadata.items() if k.startswith("output:")}
        if produced:
            task_outputs[name] = produced
        for key in OUTPUTS:
            if produced.get(key):
                outputs[key] = produced[key]
        tasks.append(
            TaskStatus(
                name=name,
                stage=stage,
                state=task_state,
                seconds=None
                if task_state in NEVER_RAN
                else _seconds(detail.get("start_time"), detail.get("end_time"), now),
                error=(detail.get("error") or {}).get("message", ""),
                leaf=detail.get("task_id") not in children,
            )
        )
    stages = {name: _stage_state(stage_states[name]) for name, _ in STAGES}
    if state in TERMINAL:
        stages = {name: "not run" if s == "pending" else s for name, s in stages.items()}
    if state == "SUCCEEDED":
        progress = 100
    else:
        done = {"succeeded": 1.0, "running": 0.5}
        progress = int(sum(weight * done.get(stages[name], 0.0) for name, weight in STAGES))
    # The body's own failure first: the notification runs (and may fail) after it.
    failed = sorted(
        (t for t in tasks if t.state == "FAILED"),
        key=lambda t: (t.stage == NOTIFICATION, not t.leaf),
    )
    job_error = (job.get("error") or {}).get("message", "")
    return JobStatus(
        job_id=job.get("name", ""),
        state=state,
        progress=progress,
        stages=stages,
        tasks=tuple(tasks),
        failed_task=failed[0].name if failed else None,
        failed_stage=failed[0].stage if failed else None,
        error=(failed[0].error if failed and failed[0].error else job_error) or None,
        elapsed_seconds=_seconds(
            job.get("start_time") or job.get("create_time"), job.get("end_time"), now
        ),
        outputs=outputs,
        task_outputs=task_outputs,
        ended=bool(job.get("end_time")),
    )


def failure_hint(status: JobStatus) -> str:
    """Suggests a fix for a failed run, from the failing task and its message."""
    error = (status.error or "").lower()
    if status.failed_stage == VALIDATION:
        return "fix the dataset rows the error lists (`make validate-data` shows them all)"
    if "out of memory" in error or "oom" in error or "resource_exhausted" in error:
        return (
            "the batch size is fixed at 64: lower training.prompt_sequence_length or"
            " target_sequence_length, use a smaller model variant, or switch accelerator_type"
        )
    if "quota" in error:
        return "request accelerator quota in the tuning region, or switch training.accelerator_type"
    return "open the failing task's logs from the console link"


def final_error(status: JobStatus) -> RLHFError | None:
    """The coded error for a run that ended badly (one line; the report says the rest)."""
    if status.state == "SUCCEEDED":
        return None
    if status.state not in KNOWN_STATES:
        ended = "ended" if status.ended else "is"
        return PipelineError(
            f"{outside_name(status.job_id)} {ended} in state"
            f" {outside_name(status.state)}, which this client (google-cloud-aiplatform)"
            " does not know",
            hint="look at the run in the console; upgrade google-cloud-aiplatform to follow it",
        )
    where = f" at {outside_name(status.failed_task)}" if status.failed_task else ""
    why = f": {outside(status.error)}" if status.error else ""
    message = f"{outside_name(status.job_id)} ended {outside_name(status.state)}{where}{why}"
    if status.state == "FAILED" and status.failed_stage == NOTIFICATION:
        return TrainingError(
            f"{message} (the run's own tasks did not fail: only the e-mail notification did)",
            hint="check training.notify_emails and the notification task's logs; the tuned"
            " model and outputs are as the report shows",
        )
    if status.state == "FAILED" and status.failed_stage == VALIDATION:
        return DataError(message, hint=failure_hint(status))
    if status.state == "FAILED":
        return TrainingError(message, hint=failure_hint(status))
    return TrainingError(message, hint="resubmit with `make submit` when ready")


class PipelineMonitor:
    """Polls a job until it ends: backs off while nothing changes, retries API hiccups.

    Args:
        target: where the job lives.
        client: a ``PipelineServiceClient``; default one for the target.
        metrics_log: append JSONL records here (None: no log).
        min_interval: seconds between polls right after a change.
        max_interval: the most seconds between polls.
        clock, sleep, now: injectable for tests.
        out: where progress lines go.
        call_timeout: seconds one API call may take.
        confirm: how many reads in a row must say "not found" or "permission denied"
            before the monitor believes it (a new job or a fresh grant can lag).
        unknown_limit: seconds a job may stay in a state this client does not know
            before the monitor stops watching it.
        on_poll: called with every job read (``PipelineJob.to_dict``), e.g. to pick up
            training metrics as they appear (``metrics.MetricsFollower``).
        first_read_limit: seconds the watch tries to read the job the first time, with or
            without a timeout (``calls.UNREACHABLE_SECONDS`` when every try so far found
            the host unreachable); a watch that never read the job ends in a coded error.
    """

    def __init__(
        self,
        target: VertexTarget,
        client: Any = None,
        metrics_log: Path | None = None,
        min_interval: float = 15.0,
        max_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        out: TextIO | None = None,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        call_timeout: float = 30.0,
        confirm: int = 3,
        unknown_limit: float = 1800.0,
        first_read_limit: float = 600.0,
    ) -> None:
        self.target = target
        self.client = client or pipeline_service(target)
        self.metrics_log = metrics_log
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.clock, self.sleep, self.now = clock, sleep, now
        # sys.stdout as it is now, not as it was at import (tests and notebooks swap it).
        self.out = out or sys.stdout
        self.call_timeout, self.confirm, self.unknown_limit = call_timeout, confirm, unknown_limit
        self.first_read_limit = first_read_limit
        self.api_calls = 0
        self._task_states: dict[str, str] = {}
        self.on_poll = on_poll

    def get_status(self, job: str) -> JobStatus:
        """Reads the job once (no retry) and summarizes it.

        Raises:
            AuthError, ConfigError: the job cannot be read (403, 404, ...); a transient
                error (429, 5xx, timeout, dropped connection) is raised as it came.
        """
        name = self.target.job_name(job)
        try:
            return self._read(name)
        except Exception as error:
            if calls.is_transient(error):
                raise
            raise calls.coded(error, f"read {name}") from None

    def _read(self, name: str) -> JobStatus:
        """One read of the job, without retry; the answer must be about ``name``."""
        self.api_calls += 1
        resource = self.client.get_pipeline_job(
            name=name, retry=None, timeout=calls.remaining(self.call_timeout)
        )
        job = calls.job_answer(resource, name, f"read {name}")
        status = job_status(job, self.now())
        if self.on_poll:
            self.on_poll(job)
        return replace(status, console_url=self.target.console_url(name))

    def monitor_job_with_updates(
        self,
        job_id: str,
        timeout: float | None = None,
        callback: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Follows a job to its end, or until ``timeout`` seconds have passed.

        Transient API errors are retried with backoff, and "not found" or "permission
        denied" only believed after ``confirm`` reads in a row; ``timeout`` bounds it all.

        Args:
            job_id: a job id or full resource name.
            timeout: stop watching after this many seconds (the job keeps running).
            callback: called with the status whenever something changed.

        Returns:
            The last status; ``timed_out`` is True when the timeout ended the watch
            (``api_error`` says why the last read failed, if it did), ``unknown_state``
            when a state this client does not know lasted ``unknown_limit`` seconds.

        Raises:
            AuthError, ConfigError: the job cannot be read, ``confirm`` times in a row.
            NetworkError, AuthError, PipelineError: the job was never read, within
                ``timeout`` or ``first_read_limit``; or an answer was malformed or about
                another job.
        """
        name = self.target.job_name(job_id)
        started = self.clock()
        deadline = None if timeout is None else started + timeout
        interval, failures, refusals = self.min_interval, 0, 0
        only_unreachable = True
        last: tuple[Any, ...] | None = None
        status: JobStatus | None = None
        unknown_since: float | None = None
        while True:
            try:
                status = self._read(name)
                failures = refusals = 0
            except Exception as error:
                if not calls.is_transient(error):
                    refusals += 1
                    if not _refusal(error) or refusals >= self.confirm:
                        raise calls.coded(error, f"read {name}") from None
                failures += 1
                only_unreachable = only_unreachable and calls.unreachable(error)
                limit = self.first_read_limit
                if only_unreachable:
                    limit = min(limit, calls.UNREACHABLE_SECONDS)
                if status is None and (
                    (deadline is not None and self.clock() >= deadline)
                    or self.clock() - started >= limit
                ):
                    raise _never_read(error, name, self.clock() - started) from None
                if deadline is not None and self.clock() >= deadline:
                    print(f"  API error ({type(error).__name__})", file=self.out)
                    return replace(
                        status or job_status({"name": name}, self.now()),
                        api_error=f"{type(error).__name__}: {error}",
                        timed_out=True,
                    )
                wait = min(self.max_interval, self.min_interval * 2 ** (failures - 1))
                if deadline is not None:
                    wait = min(wait, deadline - self.clock())
                if status is None:
                    wait = min(wait, max(0.0, started + limit - self.clock()))
                print(
                    f"  API error ({type(error).__name__}); retrying in {wait:.0f}s", file=self.out
                )
                self.sleep(wait)
                continue
            fingerprint = (status.state, tuple((t.name, t.state) for t in status.tasks))
            if fingerprint != last:
                last, interval = fingerprint, self.min_interval
                self._record(status)
                print(self._progress_line(status), file=self.out)
                if callback:
                    callback(status)
            else:
                interval = min(self.max_interval, interval * 1.5)
            known = status.state in KNOWN_STATES
            if status.state in TERMINAL or (status.ended and not known):
                return status
            if known:
                unknown_since = None
            elif unknown_since is None:
                unknown_since = self.clock()
                print(
                    f"  state {outside_name(status.state)} is unknown to this client;"
                    f" watching it for at most {self.unknown_limit:.0f}s",
                    file=self.out,
                )
            elif self.clock() - unknown_since >= self.unknown_limit:
                return replace(status, unknown_state=True)
            if deadline is not None and self.clock() >= deadline:
                return replace(status, timed_out=True)
            left = None if deadline is None else max(0.0, deadline - self.clock())
            self.sleep(interval if left is None else min(interval, left))

    def _progress_line(self, status: JobStatus) -> str:
        running = [outside_name(t.name) for t in status.tasks if t.state == "RUNNING" and t.leaf]
        stage = next((n for n, s in status.stages.items() if s == "running"), "")
        detail = f" {stage}: {', '.join(running)}" if running else (f" {stage}" if stage else "")
        return (
            f"[{duration(status.elapsed_seconds)}] {outside_name(status.state):<10}"
            f" {status.progress:>3}%{detail}"
        )

    def _record(self, status: JobStatus) -> None:
        if self.metrics_log is None:
            return
        stamp = self.now().isoformat()
        records = []
        for task in status.tasks:
            if self._task_states.get(task.name) == task.state:
                continue
            self._task_states[task.name] = task.state
            # Names and texts from the server are bounded here as anywhere they are shown.
            metrics: dict[str, Any] = {
                "task": outside_name(task.name),
                "state": outside_name(task.state),
            }
            if task.seconds is not None and task.state in TERMINAL:
                metrics["duration_seconds"] = task.seconds
            for key, value in status.task_outputs.get(task.name, {}).items():
                shown = outside_name(value, 1000) if isinstance(value, str) else value
                metrics[outside_name(key)] = shown
            records.append({"stage": task.stage or "pipeline", "metrics": metrics})
        records.append(
            {"stage": "pipeline", "metrics": {"state": status.state, "progress": status.progress}}
        )
        lines = [{"timestamp": stamp, "job_id": status.job_id, **r} for r in records]
        # Whole lines, under the log's lock (metrics.sync may be writing it too).
        append_lines(self.metrics_log, [json.dumps(line, sort_keys=True) for line in lines])


def _never_read(error: BaseException, name: str, seconds: float) -> RLHFError:
    """The coded error of a watch that never read its job."""
    found = calls.coded(error, f"read {name}")
    found.message = f"{found.message}; the job was never read in {seconds:.0f}s of trying"
    found.args = (found.message,)
    return found


def _refusal(error: BaseException) -> bool:
    """A 404 or 403: final only when it repeats (a new job or a fresh grant can lag)."""
    from google.api_core import exceptions

    return isinstance(
        error, (exceptions.NotFound, exceptions.PermissionDenied, exceptions.Forbidden)
    )


def list_runs(target: VertexTarget, pipeline: str, limit: int = 20) -> list[RunRow]:
    """The newest runs of a pipeline in the target, by the ``pipeline`` label.

    Pages are bounded (``calls.bounded_pages``), every job must carry a name in the
    target, and a job listed twice is kept once.

    Raises:
        RLHFError: the list could not be read, or the answer is malformed.
    """
    what = f"list runs in {target.parent}"
    client = pipeline_service(target)
    request = {
        "parent": target.parent,
        "filter": f'labels.pipeline="{pipeline}"',
        "order_by": "create_time desc",
        "page_size": limit,
    }
    listed = calls.listing(
        what,
        client.list_pipeline_jobs,
        request,
        lambda page: page.pipeline_jobs,
        limit,
        key=lambda job: job.name,
    )
    prefix = f"{target.parent}/pipelineJobs/"
    runs: dict[str, RunRow] = {}
    for resource in listed:
        name = str(resource.name)
        if not name.startswith(prefix) or "/" in name[len(prefix) :] or name == prefix:
            raise calls.malformed(what, f"a listed job has no name in {target.parent}")
        if name in runs:
            continue
        job = calls.job_answer(resource, name, what)
        labels = job.get("labels") or {}
        runs[name] = RunRow(
            job_id=name[len(prefix) :],
            state=short_state(job.get("state", "")),
            version=labels.get("pipeline-version", "?"),
            environment=labels.get("environment", "?"),
            created=job.get("create_time", ""),
        )
        if len(runs) >= limit:
            break
    return list(runs.values())


def cancel(target: VertexTarget, job: str) -> str:
    """Asks Vertex to cancel a job; returns its resource name."""
    name = target.job_name(job)
    client = pipeline_service(target)
    calls.call(
        f"cancel {name}",
        client.cancel_pipeline_job,
        name=name,
        retry=read_retry(),
        timeout=calls.remaining(60.0),
        retried=False,  # the client retries (read_retry): not twice
    )
    return name
