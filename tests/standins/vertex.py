"""A local stand-in for the Vertex AI v1 REST API: PipelineJob create, get, list, cancel;
Schedule create, get, list, patch, pause, resume, delete (``projects.locations.schedules``).

It records every request, serves scripted job timelines against a clock the test
controls, and injects faults (429/503 bursts, dropped connections, a create that
times out or fails after the job was made).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.standins import LoopbackServer

EPOCH = datetime(2026, 11, 27, 9, 0, 0, tzinfo=timezone.utc)

# The task tree of the compiled template: task -> parent (None: the root DAG task).
# Our tasks run inside the exit handler (``exit-handler-1``); the e-mail notification is
# its exit task, beside it under the root.
TASK_PARENTS: dict[str, str | None] = {
    "rlhf-tuning": None,
    "exit-handler-1": "rlhf-tuning",
    "vertex-pipelines-notification-email": "rlhf-tuning",
    "validate-dataset": "exit-handler-1",
    "validate-dataset-2": "exit-handler-1",
    "validate-dataset-3": "exit-handler-1",
    "compute-steps": "exit-handler-1",
    "rlhf-train-template": "exit-handler-1",
    "validate-pipeline": "rlhf-train-template",
    "rlhf-preprocessor": "rlhf-train-template",
    "reward-model-graph": "rlhf-train-template",
    "private-text-comparison-importer": "reward-model-graph",
    "reward-model-trainer": "reward-model-graph",
    "reinforcement-learning-graph": "rlhf-train-template",
    "private-text-importer": "reinforcement-learning-graph",
    "reinforcer": "reinforcement-learning-graph",
    "condition-1": "rlhf-train-template",
    "condition-2": "condition-1",
    "infer-eval-template": "condition-2",
    "bulk-inferrer": "infer-eval-template",
    "llm-deployment-graph": "rlhf-train-template",
    "refined-upload-llm-model": "llm-deployment-graph",
}
TASK_IDS = {name: str(i + 100) for i, name in enumerate(TASK_PARENTS)}


@dataclass
class Step:
    """What the job looks like from ``at`` seconds after its creation on."""

    at: float
    state: str | int  # an integer or an unknown name: a state newer than the client
    tasks: dict[str, str | int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_error: str = ""
    # task -> output artifact name -> URIs (e.g. the trainers' tensorboard_metrics).
    artifacts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    ended: bool = False  # set endTime whatever the state (an unknown final state)


def timeline_success(hour: float = 3600.0) -> list[Step]:
    """A run of ``hour`` seconds through every stage, ending SUCCEEDED."""
    pre = {
        "validate-dataset": "SUCCEEDED",
        "validate-dataset-2": "SUCCEEDED",
        "validate-dataset-3": "SUCCEEDED",
    }
    steps_out = {
        "compute-steps": {
            "reward_model_train_steps": 1410,
            "reinforcement_learning_train_steps": 320,
        }
    }
    train = {
        **pre,
        "compute-steps": "SUCCEEDED",
        "rlhf-tuning": "RUNNING",
        "rlhf-train-template": "RUNNING",
        "validate-pipeline": "SUCCEEDED",
        "rlhf-preprocessor": "SUCCEEDED",
    }
    reward_done = {
        **train,
        "reward-model-graph": "SUCCEEDED",
        "private-text-comparison-importer": "SUCCEEDED",
        "reward-model-trainer": "SUCCEEDED",
    }
    rl_done = {
        **reward_done,
        "reinforcement-learning-graph": "SUCCEEDED",
        "private-text-importer": "SUCCEEDED",
        "reinforcer": "SUCCEEDED",
    }
    final_outputs = {
        **steps_out,
        "rlhf-tuning": {"model_resource_name": "", "endpoint_resource_name": ""},
    }
    done = {name: "SUCCEEDED" for name in TASK_PARENTS}
    done["llm-deployment-graph"] = done["refined-upload-llm-model"] = "SKIPPED"
    return [
        Step(0, "PIPELINE_STATE_PENDING"),
        Step(
            20,
            "PIPELINE_STATE_RUNNING",
            {
                "rlhf-tuning": "RUNNING",
                "validate-dataset": "RUNNING",
                "validate-dataset-2": "RUNNING",
                "validate-dataset-3": "RUNNING",
            },
        ),
        Step(
            110,
            "PIPELINE_STATE_RUNNING",
            {**pre, "rlhf-tuning": "RUNNING", "compute-steps": "RUNNING"},
        ),
        Step(
            170,
            "PIPELINE_STATE_RUNNING",
            {**train, "reward-model-graph": "RUNNING", "reward-model-trainer": "RUNNING"},
            outputs=steps_out,
        ),
        Step(
            0.45 * hour,
            "PIPELINE_STATE_RUNNING",
            {**reward_done, "reinforcement-learning-graph": "RUNNING", "reinforcer": "RUNNING"},
            outputs=steps_out,
        ),
        Step(
            0.9 * hour,
            "PIPELINE_STATE_RUNNING",
            {
                **rl_done,
                "condition-1": "RUNNING",
                "condition-2": "RUNNING",
                "infer-eval-template": "RUNNING",
                "bulk-inferrer": "RUNNING",
            },
            outputs=steps_out,
        ),
        Step(hour, "PIPELINE_STATE_SUCCEEDED", done, outputs=final_outputs),
    ]


def timeline_training_failure(message: str) -> list[Step]:
    """Validation passes, then the reward-model trainer fails with ``message``."""
    ok = {
        "validate-dataset": "SUCCEEDED",
        "validate-dataset-2": "SUCCEEDED",
        "validate-dataset-3": "SUCCEEDED",
        "compute-steps": "SUCCEEDED",
        "validate-pipeline": "SUCCEEDED",
        "rlhf-preprocessor": "SUCCEEDED",
    }
    return [
        Step(
            0, "PIPELINE_STATE_RUNNING", {"rlhf-tuning": "RUNNING", "validate-dataset": "RUNNING"}
        ),
        Step(
            60,
            "PIPELINE_STATE_RUNNING",
            {
                **ok,
                "rlhf-tuning": "RUNNING",
                "rlhf-train-template": "RUNNING",
                "reward-model-graph": "RUNNING",
                "reward-model-trainer": "RUNNING",
            },
        ),
        Step(
            600,
            "PIPELINE_STATE_FAILED",
            {
                **ok,
                "rlhf-tuning": "FAILED",
                "rlhf-train-template": "FAILED",
                "reward-model-graph": "FAILED",
                "reward-model-trainer": "FAILED",
                "reinforcement-learning-graph": "NOT_TRIGGERED",
            },
            errors={
                "reward-model-trainer": message,
                "reward-model-graph": "The DAG failed because some tasks failed.",
                "rlhf-train-template": "The DAG failed because some tasks failed.",
            },
            job_error="The DAG failed because some tasks failed.",
        ),
    ]


def timeline_validation_failure(message: str) -> list[Step]:
    """The preference dataset check fails; nothing is booked."""
    return [
        Step(
            0, "PIPELINE_STATE_RUNNING", {"rlhf-tuning": "RUNNING", "validate-dataset": "RUNNING"}
        ),
        Step(
            90,
            "PIPELINE_STATE_FAILED",
            {
                "rlhf-tuning": "FAILED",
                "validate-dataset": "FAILED",
                "validate-dataset-2": "SUCCEEDED",
                "validate-dataset-3": "SUCCEEDED",
                "compute-steps": "NOT_TRIGGERED",
            },
            errors={"validate-dataset": message},
            job_error="The DAG failed because some tasks failed.",
        ),
    ]


def timeline_long_running(seconds: float = 10_000.0) -> list[Step]:
    """A job that stays RUNNING for a long time (for cancel and Ctrl-C tests)."""
    return [
        Step(
            0,
            "PIPELINE_STATE_RUNNING",
            {
                "rlhf-tuning": "RUNNING",
                "reward-model-trainer": "RUNNING",
                "reward-model-graph": "RUNNING",
            },
        ),
        Step(seconds, "PIPELINE_STATE_SUCCEEDED", {}),
    ]


@dataclass
class Job:
    resource: dict[str, Any]
    created_at: float
    timeline: list[Step]
    cancelled_at: float | None = None


# Answers that break the API's promises, for ``VertexStandIn.hostile``.
HOSTILE = (
    "truncated",  # the JSON body cut in half
    "wrong-types",  # fields of the wrong type or format
    "repeat-page-token",  # every list page says there is a next one, with the same token
    "endless-pages",  # every list page has a new next token
    "other-job",  # a get or create answers with another job's name
    "duplicates",  # a list names every job twice
    "nameless",  # list items without a name
)
OTHER_JOB = "projects/rlhf-test-project/locations/us-central1/pipelineJobs/someone-elses-job"
OTHER_SCHEDULE = "projects/rlhf-test-project/locations/us-central1/schedules/999999999"


def spoil(
    mode: str,
    body: dict[str, Any],
    listing: bool,
    key: str = "pipelineJobs",
    other: str = OTHER_JOB,
) -> dict[str, Any] | bytes:
    """The answer ``body`` as a hostile server in ``mode`` gives it.

    ``key`` is the list field of a listing, ``other`` the name another resource has.
    """
    if mode == "truncated":
        data = json.dumps(body).encode()
        return data[: max(1, len(data) // 2)]
    if mode == "wrong-types":
        if listing:
            return {key: "not a list", "nextPageToken": 7}
        return {**body, "createTime": "yesterday", "state": {"not": "a state"}}
    if mode == "other-job" and not listing:
        return {**body, "name": other}
    if listing and mode in ("repeat-page-token", "endless-pages"):
        # The same token (or a new one that is not a number) over the same page.
        token = "again" if mode == "repeat-page-token" else f"page-{time.monotonic_ns()}"
        return {**body, "nextPageToken": token}
    if listing and mode == "duplicates":
        return {**body, key: [j for j in body.get(key, []) for _ in (0, 1)]}
    if listing and mode == "nameless":
        jobs = [{k: v for k, v in j.items() if k != "name"} for j in body.get(key, [])]
        return {**body, key: jobs}
    return body


class VertexStandIn(LoopbackServer):
    """The server. ``clock`` gives the seconds the scripted timelines run on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # Clock seconds -> timestamps: EPOCH-based on a fake clock, the wall clock otherwise.
        start = EPOCH if clock is not time.monotonic else datetime.now(timezone.utc)
        self.origin = start - timedelta(seconds=clock())
        self.requests: list[dict[str, Any]] = []
        self.jobs: dict[str, Job] = {}
        self.next_timeline: list[Step] = timeline_success(60.0)
        self._faults: list[tuple[str, int]] = []  # (method, status; 0 = drop, -1 = hang)
        self._after_create: list[tuple[str, int]] = []
        self.hang_seconds = 1.0  # how long a -1 fault holds the request before dropping it
        self.create_mode = "normal"  # or "timeout-after-create", "503-after-create"
        self.create_delay = 0.0
        # Labels the service adds to every job it creates (the real one adds this).
        self.service_labels = {"vertex-ai-pipelines-run-billing-id": "8106518047893254144"}
        # A hostile answer to every request (see ``HOSTILE``), or None.
        self.hostile: str | None = None
        # Schedules by resource name, as the REST API shows them (camelCase JSON).
        self.schedules: dict[str, dict[str, Any]] = {}
        # How many schedule pauses, resumes or deletes take effect and then answer 503.
        self.lose_answers = 0
        # Called once before the next schedule is created (a rival command lands there).
        self.before_schedule_create: Callable[[], None] | None = None
        self._schedule_ids = iter(range(4_000_000_000_000_000_001, 5_000_000_000_000_000_000))
        self.lock = threading.Lock()
        super().__init__()

    def add_schedule(self, parent: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Adds a schedule as the service would have made it; returns its resource."""
        name = f"{parent}/schedules/{next(self._schedule_ids)}"
        now = self.stamp(self.clock())
        resource = {
            "state": "ACTIVE",
            "startedRunCount": "0",
            "maxConcurrentRunCount": "1",
            **fields,
            "name": name,
            "createTime": now,
            "updateTime": now,
            "startTime": now,
        }
        resource.setdefault("nextRunTime", self.stamp(self.clock() + 3600))
        self.schedules[name] = resource
        return resource

    def fire(self, schedule: str, timeline: list[Step] | None = None) -> str:
        """Starts a run of ``schedule`` as the service would at its time; its job name."""
        resource = self.schedules[schedule]
        request = resource["createPipelineJobRequest"]
        parent = request["parent"]
        count = int(resource.get("startedRunCount", "0")) + 1
        job_id = f"rlhf-tuning-scheduled-{schedule.rsplit('/', 1)[-1][-6:]}-{count}"
        name = f"{parent}/pipelineJobs/{job_id}"
        job = dict(request["pipelineJob"])
        self.add_job(
            name,
            timeline or self.next_timeline,
            labels={**job.pop("labels", {}), **self.service_labels},
            fields={**job, "scheduleName": schedule},
        )
        resource["startedRunCount"] = str(count)
        resource["lastScheduledRunResponse"] = {
            "scheduledRunTime": self.stamp(self.clock()),
            "runResponse": name,
        }
        return name

    def fail_next(self, count: int, status: int, method: str = "GET") -> None:
        """The next ``count`` requests of ``method`` get ``status``.

        0 drops the connection; -1 holds the request ``hang_seconds`` (a timeout), then
        drops it.
        """
        with self.lock:
            self._faults += [(method, status)] * count

    def fail_after_create(self, count: int, status: int, method: str = "GET") -> None:
        """Like ``fail_next``, armed once the next job has been created."""
        with self.lock:
            self._after_create += [(method, status)] * count

    def stamp(self, seconds: float) -> str:
        """The timestamp of a moment on this stand-in's clock."""
        return _iso(self.origin + timedelta(seconds=seconds))

    def add_job(
        self,
        name: str,
        timeline: list[Step],
        labels: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Adds a job; ``fields`` are further resource fields (runtimeConfig, templateUri)."""
        self.jobs[name] = Job(
            {
                "name": name,
                "displayName": name.rsplit("/", 1)[-1],
                "labels": labels or {},
                "createTime": self.stamp(self.clock()),
                "runtimeConfig": {},
                **(fields or {}),
            },
            self.clock(),
            timeline,
        )

    def calls(self, method: str | None = None, suffix: str = "") -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if (method is None or r["method"] == method) and r["path"].endswith(suffix)
        ]

    # The job as the API shows it now.
    def view(self, job: Job) -> dict[str, Any]:
        elapsed = self.clock() - job.created_at
        current = [s for s in job.timeline if s.at <= elapsed][-1]
        resource = dict(job.resource)
        state, tasks = current.state, dict(current.tasks)
        if job.cancelled_at is not None:
            state = "PIPELINE_STATE_CANCELLED"
            tasks = {n: ("CANCELLED" if s == "RUNNING" else s) for n, s in tasks.items()}
        resource["state"] = state
        # The job starts when it is created; a step's changes happen step.at later.
        begin = job.created_at
        ended = elapsed if job.cancelled_at is not None else current.at
        if state != "PIPELINE_STATE_PENDING":
            resource["startTime"] = self.stamp(begin)
        if current.ended or state in (
            "PIPELINE_STATE_SUCCEEDED",
            "PIPELINE_STATE_FAILED",
            "PIPELINE_STATE_CANCELLED",
        ):
            resource["endTime"] = self.stamp(begin + ended)
        if current.job_error:
            resource["error"] = {"code": 9, "message": current.job_error}
        tasks = self._with_exit_handler(tasks, state)
        details = []
        for index, (name, task_state) in enumerate(tasks.items()):
            detail: dict[str, Any] = {
                # A task the template does not have (a name a test made up) runs in the body.
                "taskId": TASK_IDS.get(name, str(900 + index)),
                "taskName": name,
                "state": task_state,
                "startTime": self.stamp(begin + self._first_seen(job, name)),
            }
            parent = TASK_PARENTS.get(name, "exit-handler-1")
            if parent:
                detail["parentTaskId"] = TASK_IDS[parent]
            if task_state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                finished = ended if job.cancelled_at is not None else self._ended(job, name, ended)
                detail["endTime"] = self.stamp(begin + finished)
            if name in current.errors:
                detail["error"] = {"code": 9, "message": current.errors[name]}
            if name in current.outputs:
                detail["execution"] = {
                    "metadata": {f"output:{k}": v for k, v in current.outputs[name].items()}
                }
            if name in current.artifacts:
                detail["outputs"] = {
                    output: {
                        "artifacts": [{"uri": u, "schemaTitle": "system.Artifact"} for u in uris]
                    }
                    for output, uris in current.artifacts[name].items()
                }
            details.append(detail)
        resource["jobDetail"] = {"taskDetails": details}
        return resource

    @staticmethod
    def _with_exit_handler(tasks: dict[str, str | int], state: str | int) -> dict[str, str | int]:
        """Adds what Vertex shows for the exit handler where a timeline leaves it out.

        ``exit-handler-1`` is the DAG around our tasks: it takes the root's state. The
        notification runs once the body has ended, whatever its outcome.
        """
        tasks = dict(tasks)
        root = tasks.get("rlhf-tuning")
        if root is not None and "exit-handler-1" not in tasks:
            tasks["exit-handler-1"] = root
        ended = state in ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED")
        if ended and tasks and "vertex-pipelines-notification-email" not in tasks:
            tasks["vertex-pipelines-notification-email"] = "SUCCEEDED"
        return tasks

    @staticmethod
    def _first_seen(job: Job, task: str) -> float:
        return next((s.at for s in job.timeline if task in s.tasks), 0.0)

    @staticmethod
    def _ended(job: Job, task: str, now: float) -> float:
        """When a task first showed a final state (the step it ended in)."""
        final = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")
        return next((s.at for s in job.timeline if s.tasks.get(task) in final), now)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(
                self,
                status: int,
                body: dict[str, Any],
                listing: bool = False,
                key: str = "pipelineJobs",
                other: str = OTHER_JOB,
            ) -> None:
                hostile = standin.hostile
                spoilt = spoil(hostile, body, listing, key, other) if hostile else body
                data = spoilt if isinstance(spoilt, bytes) else json.dumps(spoilt).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, reason: str, message: str) -> None:
                self._reply(
                    status, {"error": {"code": status, "status": reason, "message": message}}
                )

            def _fault(self, method: str) -> bool:
                with standin.lock:
                    index = next((i for i, f in enumerate(standin._faults) if f[0] == method), None)
                    fault = standin._faults.pop(index) if index is not None else None
                if fault is None:
                    return False
                if fault[1] == -1:
                    time.sleep(standin.hang_seconds)
                if fault[1] in (0, -1):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                reasons = {
                    429: "RESOURCE_EXHAUSTED",
                    503: "UNAVAILABLE",
                    500: "INTERNAL",
                    403: "PERMISSION_DENIED",
                    404: "NOT_FOUND",
                    401: "UNAUTHENTICATED",
                }
                self._error(fault[1], reasons.get(fault[1], "UNKNOWN"), "injected fault")
                return True

            def _record(self, method: str) -> tuple[str, dict[str, list[str]], Any]:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = unquote(parts.path)
                query = parse_qs(parts.query)
                standin.requests.append(
                    {
                        "method": method,
                        "path": path,
                        "query": query,
                        "body": body,
                        "at": standin.clock(),
                    }
                )
                return path, query, body

            def _schedule_reply(
                self, status: int, body: dict[str, Any], listing: bool = False
            ) -> None:
                self._reply(status, body, listing, key="schedules", other=OTHER_SCHEDULE)

            def _list_schedules(self, parent: str, query: dict[str, list[str]]) -> None:
                found = [
                    s for n, s in standin.schedules.items() if n.startswith(f"{parent}/schedules/")
                ]
                wanted = query.get("filter", [""])[0]
                if wanted.startswith('display_name="'):
                    exact = wanted[len('display_name="') : -1]
                    found = [s for s in found if s.get("displayName") == exact]
                elif wanted.startswith('display_name:"') and wanted.endswith('*"'):
                    prefix = wanted[len('display_name:"') : -2]
                    found = [s for s in found if str(s.get("displayName", "")).startswith(prefix)]
                size = int(query.get("pageSize", ["0"])[0]) or 100
                token = query.get("pageToken", ["0"])[0]
                start = int(token) if token.isdigit() else 0
                page: dict[str, Any] = {"schedules": found[start : start + size]}
                if start + size < len(found):
                    page["nextPageToken"] = str(start + size)
                self._schedule_reply(200, page, listing=True)

            def do_GET(self) -> None:
                path, query, _ = self._record("GET")
                if self._fault("GET"):
                    return
                name = path.removeprefix("/v1/")
                if name.endswith("/schedules"):
                    self._list_schedules(name.removesuffix("/schedules"), query)
                    return
                if "/schedules/" in name:
                    schedule = standin.schedules.get(name)
                    if schedule is None:
                        self._error(404, "NOT_FOUND", f"{name} not found")
                        return
                    self._schedule_reply(200, schedule)
                    return
                if name.endswith("/pipelineJobs"):
                    jobs = [
                        standin.view(j)
                        for j in reversed(list(standin.jobs.values()))
                        if j.resource["name"].startswith(name)
                    ]
                    wanted = query.get("filter", [""])[0]
                    if wanted.startswith("labels."):
                        key, value = wanted[len("labels.") :].split("=", 1)
                        jobs = [j for j in jobs if j["labels"].get(key) == value.strip('"')]
                    elif wanted.startswith("schedule_name="):
                        value = wanted[len("schedule_name=") :].strip('"')
                        jobs = [j for j in jobs if j.get("scheduleName") == value]
                    size = int(query.get("pageSize", ["0"])[0]) or len(jobs) or 1
                    token = query.get("pageToken", ["0"])[0]
                    start = int(token) if token.isdigit() else 0  # hostile tokens: page 1
                    page: dict[str, Any] = {"pipelineJobs": jobs[start : start + size]}
                    if start + size < len(jobs):
                        page["nextPageToken"] = str(start + size)
                    self._reply(200, page, listing=True)
                    return
                job = standin.jobs.get(name)
                if job is None:
                    self._error(404, "NOT_FOUND", f"{name} not found")
                    return
                self._reply(200, standin.view(job))

            def _schedule_action(self, name: str, action: str, body: Any) -> None:
                schedule = standin.schedules.get(name)
                if schedule is None:
                    self._error(404, "NOT_FOUND", f"{name} not found")
                    return
                before, after = ("ACTIVE", "PAUSED") if action == "pause" else ("PAUSED", "ACTIVE")
                if schedule["state"] != before:
                    self._error(
                        400, "FAILED_PRECONDITION", f"schedule is {schedule['state']}, not {before}"
                    )
                    return
                schedule["state"] = after
                stamp = standin.stamp(standin.clock())
                schedule["lastPauseTime" if action == "pause" else "lastResumeTime"] = stamp
                if self._lost():
                    return
                self._reply(200, {})

            def _lost(self) -> bool:
                """Answers 503 to a call that took effect, while ``lose_answers`` lasts."""
                with standin.lock:
                    lost = standin.lose_answers > 0
                    standin.lose_answers -= 1 if lost else 0
                if lost:
                    self._error(503, "UNAVAILABLE", "the answer was lost")
                return lost

            def do_POST(self) -> None:
                path, query, body = self._record("POST")
                if self._fault("POST"):
                    return
                name = path.removeprefix("/v1/")
                for action in ("pause", "resume"):
                    if name.endswith(f":{action}") and "/schedules/" in name:
                        self._schedule_action(name.removesuffix(f":{action}"), action, body)
                        return
                if name.endswith("/schedules"):
                    missing = [k for k in ("displayName", "cron") if not body.get(k)]
                    if missing or "createPipelineJobRequest" not in body:
                        self._error(400, "INVALID_ARGUMENT", f"missing {missing}")
                        return
                    rival, standin.before_schedule_create = standin.before_schedule_create, None
                    if rival is not None:
                        rival()
                    created = standin.add_schedule(name.removesuffix("/schedules"), body)
                    self._schedule_reply(200, created)
                    return
                if name.endswith(":cancel"):
                    job = standin.jobs.get(name.removesuffix(":cancel"))
                    if job is None:
                        self._error(404, "NOT_FOUND", "no such job")
                        return
                    job.cancelled_at = standin.clock()
                    self._reply(200, {})
                    return
                job_id = query["pipelineJobId"][0]
                full = f"{name}/{job_id}"
                if full in standin.jobs:
                    self._error(409, "ALREADY_EXISTS", f"{full} already exists")
                    return
                resource = {
                    **body,
                    "labels": {**body.get("labels", {}), **standin.service_labels},
                    "name": full,
                    "createTime": standin.stamp(standin.clock()),
                }
                standin.jobs[full] = Job(resource, standin.clock(), standin.next_timeline)
                with standin.lock:
                    standin._faults += standin._after_create
                    standin._after_create = []
                if standin.create_mode == "timeout-after-create":
                    standin.create_mode = "normal"
                    time.sleep(standin.create_delay)
                elif standin.create_mode == "503-after-create":
                    standin.create_mode = "normal"
                    self._error(503, "UNAVAILABLE", "backend unavailable")
                    return
                self._reply(200, standin.view(standin.jobs[full]))

            def do_PATCH(self) -> None:
                path, query, body = self._record("PATCH")
                if self._fault("PATCH"):
                    return
                name = path.removeprefix("/v1/")
                schedule = standin.schedules.get(name)
                if schedule is None:
                    self._error(404, "NOT_FOUND", f"{name} not found")
                    return
                mask = [p for p in query.get("updateMask", [""])[0].split(",") if p]
                fields = {_camel(p): p for p in mask}
                unknown = [p for p in fields if p not in UPDATABLE]
                if not mask or unknown:
                    self._error(400, "INVALID_ARGUMENT", f"bad update mask {mask}")
                    return
                if schedule["state"] not in ("ACTIVE", "PAUSED"):
                    self._error(400, "FAILED_PRECONDITION", "only active or paused ones")
                    return
                cleared = _cleared(schedule, body, list(fields))
                if cleared:
                    self._error(400, "INVALID_ARGUMENT", f"cannot unset {cleared}")
                    return
                for key in fields:
                    schedule[key] = body.get(key)
                schedule["updateTime"] = standin.stamp(standin.clock())
                self._schedule_reply(200, schedule)

            def do_DELETE(self) -> None:
                path, _, _ = self._record("DELETE")
                if self._fault("DELETE"):
                    return
                name = path.removeprefix("/v1/")
                if standin.schedules.pop(name, None) is None:
                    self._error(404, "NOT_FOUND", f"{name} not found")
                    return
                if self._lost():
                    return
                self._reply(
                    200,
                    {
                        "name": f"{name}/operations/1",
                        "done": True,
                        "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
                    },
                )

        return Handler


# Schedule fields a PATCH may name, and the run-request fields it may not clear.
UPDATABLE = {
    "displayName",
    "cron",
    "maxConcurrentRunCount",
    "createPipelineJobRequest",
    "allowQueueing",
    "maxRunCount",
    "startTime",
    "endTime",
}


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part.title() for part in rest)


def _cleared(schedule: dict[str, Any], body: dict[str, Any], fields: list[str]) -> list[str]:
    """The non-empty fields a patch would unset (the service refuses that)."""
    cleared = [f for f in fields if schedule.get(f) and not body.get(f)]
    if "createPipelineJobRequest" in fields:
        old = schedule.get("createPipelineJobRequest", {}).get("pipelineJob", {})
        new = (body.get("createPipelineJobRequest") or {}).get("pipelineJob", {})
        cleared += [f for f in ("serviceAccount", "network") if old.get(f) and not new.get(f)]
        if old.get("encryptionSpec") and not new.get("encryptionSpec"):
            cleared.append("encryptionSpec")
    return cleared


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def scale(timeline: list[Step], factor: float) -> list[Step]:
    """The same timeline, ``factor`` times as fast or slow (for real-time CLI tests)."""
    return [replace(s, at=s.at * factor) for s in timeline]
