"""The records of runs as the cloud wing reads them: a job's status and its tasks'
(``monitor.job_status``), and a row of the runs listing (``monitor.list_runs``).

Every text in them came from the server as it sent it: the views show it through
``views.text``. The original description's Python API hands its users dicts: ``as_dict``
gives them with the keys they always had (README "Python API").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """A time the server sent (RFC 3339, ``Z`` or an offset) as an aware datetime; None
    for a missing or malformed one (an answer's odd field never ends a watch)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# The keys of the original Python API's status dict, in their order: every status has
# the first twelve; the watch adds the others when they are facts (README "Python API").
STATUS_KEYS = (
    "job_id",
    "state",
    "progress",
    "stages",
    "tasks",
    "failed_task",
    "failed_stage",
    "error",
    "elapsed_seconds",
    "outputs",
    "task_outputs",
    "ended",
)
WATCH_KEYS = ("console_url", "api_error", "timed_out", "unknown_state")
TASK_KEYS = ("name", "stage", "state", "seconds", "error", "leaf")


@dataclass(frozen=True)
class TaskStatus:
    """One task of a job.

    Attributes:
        name: the task's name (``reward-model-trainer``).
        stage: the stage a person follows (``monitor.STAGES``, or ``notification``);
            None for a task of no known stage.
        state: ``SUCCEEDED``, ``RUNNING``, ... (``UNKNOWN(n)`` for a state the client
            does not know).
        seconds: how long it ran (so far); None when it never ran.
        error: its error message; empty when none.
        leaf: True for a task that is not a graph of other tasks.
    """

    name: str
    stage: str | None
    state: str
    seconds: float | None
    error: str
    leaf: bool

    def as_dict(self) -> dict[str, Any]:
        """The task as the original Python API gives it."""
        return {key: getattr(self, key) for key in TASK_KEYS}

    @classmethod
    def from_dict(cls, task: Mapping[str, Any]) -> TaskStatus:
        """A task from ``as_dict``'s dict."""
        return cls(
            name=task["name"],
            stage=task["stage"],
            state=task["state"],
            seconds=task["seconds"],
            error=task.get("error") or "",
            leaf=task["leaf"],
        )


@dataclass(frozen=True)
class JobStatus:
    """What a person (or a callback) learns from one read of a job.

    Attributes:
        job_id: the job's resource name.
        state: ``SUCCEEDED``, ``RUNNING``, ... (``UNKNOWN(n)``, ``UNSPECIFIED`` for a state
            the client does not know).
        progress: percent, from the stages' typical shares of a run's time.
        stages: stage -> ``pending``, ``running``, ``succeeded``, ``failed``, ...
        tasks: every task, in the server's order.
        failed_task: the task to blame (the body's own leaf first), or None.
        failed_stage: its stage, or None.
        error: the failed task's message, else the job's; None when neither.
        elapsed_seconds: since the job started (or was created); None before.
        outputs: ``model_resource_name``/``endpoint_resource_name`` when produced.
        task_outputs: task -> its outputs (``output:`` metadata).
        ended: the job has an end time.
        console_url: the run's page in the console (set once the job was read).
        api_error: why the last read failed, when the watch stopped on an API error.
        timed_out: the watch's timeout ended it (the job goes on).
        unknown_state: a state this client does not know lasted too long to watch.
    """

    job_id: str
    state: str
    progress: int
    stages: dict[str, str]
    tasks: tuple[TaskStatus, ...]
    failed_task: str | None
    failed_stage: str | None
    error: str | None
    elapsed_seconds: float | None
    outputs: dict[str, Any]
    task_outputs: dict[str, dict[str, Any]]
    ended: bool
    console_url: str | None = None
    api_error: str | None = None
    timed_out: bool = False
    unknown_state: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The status as the original Python API's dict: the twelve keys of every status,
        then ``console_url``, ``api_error``, ``timed_out`` and ``unknown_state`` where they
        are facts (a fresh dict, with fresh dicts and lists in it)."""
        found: dict[str, Any] = {
            "job_id": self.job_id,
            "state": self.state,
            "progress": self.progress,
            "stages": dict(self.stages),
            "tasks": [task.as_dict() for task in self.tasks],
            "failed_task": self.failed_task,
            "failed_stage": self.failed_stage,
            "error": self.error,
            "elapsed_seconds": self.elapsed_seconds,
            "outputs": dict(self.outputs),
            "task_outputs": {name: dict(values) for name, values in self.task_outputs.items()},
            "ended": self.ended,
        }
        if self.console_url is not None:
            found["console_url"] = self.console_url
        if self.api_error is not None:
            found["api_error"] = self.api_error
        if self.timed_out:
            found["timed_out"] = True
        if self.unknown_state:
            found["unknown_state"] = True
        return found

    @classmethod
    def from_dict(cls, status: Mapping[str, Any]) -> JobStatus:
        """A status from ``as_dict``'s dict (what the original API's users hold).

        Raises:
            KeyError: a key every status has is missing.
        """
        return cls(
            job_id=status["job_id"],
            state=status["state"],
            progress=status["progress"],
            stages=dict(status["stages"]),
            tasks=tuple(TaskStatus.from_dict(task) for task in status["tasks"]),
            failed_task=status["failed_task"],
            failed_stage=status.get("failed_stage"),
            error=status["error"],
            elapsed_seconds=status["elapsed_seconds"],
            outputs=dict(status["outputs"]),
            task_outputs={k: dict(v) for k, v in (status.get("task_outputs") or {}).items()},
            ended=bool(status.get("ended")),
            console_url=status.get("console_url"),
            api_error=status.get("api_error"),
            timed_out=bool(status.get("timed_out")),
            unknown_state=bool(status.get("unknown_state")),
        )


@dataclass(frozen=True)
class RunRow:
    """One run in a listing of a pipeline's runs (``monitor.list_runs``).

    Attributes:
        job_id: the job's id (the last part of its resource name).
        state: its state, as ``JobStatus.state`` names it.
        version: its ``pipeline-version`` label (``?`` without one).
        environment: its ``environment`` label (``?`` without one).
        created: its creation time as the server wrote it.
    """

    job_id: str
    state: str
    version: str = "?"
    environment: str = "?"
    created: str = ""
