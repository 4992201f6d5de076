"""Vertex AI schedules of the pipeline: create or update one, list, pause, resume, delete.

A schedule has no labels; ours are known by their display name,
``<pipeline>:<environment>:<name>`` (``rlhf-tuning:prod:weekly``), which this module sets
and looks for: one schedule per environment and name. Its run request is the one
``submission.build_request`` builds for ``make submit`` (template pinned by digest,
parameters, labels, service account, network, CMEK), made into a schedule by the SDK's
``PipelineJobSchedule``. Every call goes through ``calls``; answers are checked (a
schedule answer about another schedule is refused, a malformed one is a coded error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vertex_rlhf.cloud import calls
from vertex_rlhf.cloud.submission import SubmitRequest, pipeline_job
from vertex_rlhf.cloud.vertex import (
    VertexTarget,
    init_sdk,
    pipeline_service,
    read_retry,
    schedule_service,
)
from vertex_rlhf.config import names
from vertex_rlhf.errors import ConfigError, PipelineError

SEPARATOR = ":"
# Two RLHF runs of one environment never overlap.
MAX_CONCURRENT_RUNS = 1
# Fields an update replaces (the service keeps the rest).
UPDATE_MASK = ("cron", "max_concurrent_run_count", "create_pipeline_job_request")
LIST_LIMIT = 1000
# Parts of the run request an update cannot clear ("the non-empty fields cannot be unset").
STICKY = (
    ("serviceAccount", "vertex_ai.service_account"),
    ("network", "vertex_ai.network"),
    ("kmsKeyName", "training.encryption_spec_key_name"),
)


def display_prefix(pipeline: str, env: str) -> str:
    """What every schedule of an environment's display name starts with."""
    return f"{pipeline}{SEPARATOR}{env}{SEPARATOR}"


def display_name(pipeline: str, env: str, name: str) -> str:
    """The display name of schedule ``name`` of an environment."""
    return display_prefix(pipeline, env) + name


@dataclass(frozen=True)
class ScheduleState:
    """A schedule as the service shows it (every text from outside, not yet escaped).

    Attributes:
        resource: ``projects/P/locations/L/schedules/ID`` (checked).
        name: the NAME part of the display name.
        cron: the cron expression, time zone prefix included.
        state: ``ACTIVE``, ``PAUSED``, ``COMPLETED``, ``UNKNOWN(n)``.
        version_label: the run's ``pipeline-version`` label.
        digest: the pinned template's ``sha256:`` digest ("" when not pinned by digest).
        template_uri: the run request's template URI.
        next_run: when the next run starts ("" if none).
        last_scheduled: when the last run was scheduled ("" if none yet).
        started_runs: how many runs it started.
        max_concurrent: its ``max_concurrent_run_count``.
        sticky: the run request's service account, network and CMEK key (an update
            cannot clear them).
    """

    resource: str
    name: str
    cron: str
    state: str
    version_label: str
    digest: str
    template_uri: str
    next_run: str
    last_scheduled: str
    started_runs: int
    max_concurrent: int
    sticky: dict[str, str]


def _text(what: str, value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise calls.malformed(what, f"{field} is {type(value).__name__}, not text")
    return value


def _number(what: str, value: Any, field: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise calls.malformed(what, f"{field} is not a number") from None


def _state(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "UNSPECIFIED" if value == 0 else f"UNKNOWN({value})"
    return str(value or "UNSPECIFIED").removeprefix("STATE_")


def read_state(what: str, schedule: dict[str, Any], parent: str, prefix: str) -> ScheduleState:
    """A checked ``ScheduleState`` from a schedule answer (``Schedule.to_dict``).

    Raises:
        PipelineError: a name not in ``parent``, or a field of the wrong kind.
    """
    resource = _text(what, schedule.get("name"), "name")
    try:
        names.parse_schedule_name(resource, parent)
    except ConfigError:
        raise calls.malformed(what, f"a schedule is named {resource[:200]!r}") from None
    display = _text(what, schedule.get("display_name"), "display_name")
    request = schedule.get("create_pipeline_job_request") or {}
    job = request.get("pipeline_job") if isinstance(request, dict) else None
    if not isinstance(job, dict):
        job = {}
    labels = job.get("labels") or {}
    if not isinstance(labels, dict):
        raise calls.malformed(what, "the run's labels are not a mapping")
    uri = _text(what, job.get("template_uri"), "template_uri")
    tail = uri.rsplit("/", 1)[-1]
    encryption = job.get("encryption_spec") or {}
    last = schedule.get("last_scheduled_run_response") or {}
    if not isinstance(last, dict) or not isinstance(encryption, dict):
        raise calls.malformed(what, "a field that is a message is not one")
    return ScheduleState(
        resource=resource,
        name=display[len(prefix) :] if display.startswith(prefix) else display,
        cron=_text(what, schedule.get("cron"), "cron"),
        state=_state(schedule.get("state")),
        version_label=_text(what, labels.get("pipeline-version"), "the version label"),
        digest=tail if names.DIGEST.fullmatch(tail) else "",
        template_uri=uri,
        next_run=_text(what, schedule.get("next_run_time"), "next_run_time"),
        last_scheduled=_text(what, last.get("scheduled_run_time"), "scheduled_run_time"),
        started_runs=_number(what, schedule.get("started_run_count"), "started_run_count"),
        max_concurrent=_number(
            what, schedule.get("max_concurrent_run_count"), "max_concurrent_run_count"
        ),
        sticky={
            "serviceAccount": _text(what, job.get("service_account"), "service_account"),
            "network": _text(what, job.get("network"), "network"),
            "kmsKeyName": _text(what, encryption.get("kms_key_name"), "kms_key_name"),
        },
    )


def list_schedules(target: VertexTarget, prefix: str, exact: str | None = None) -> list[Any]:
    """The schedules whose display name starts with ``prefix`` (or is ``exact``).

    Pages are bounded (``calls.bounded_pages``); a schedule listed twice is kept once,
    and one whose display name is not ours is left out (whatever the service's filter
    did).

    Returns:
        ``ScheduleState`` records, oldest first as listed.

    Raises:
        RLHFError: the list could not be read, or the answer is malformed.
    """
    what = f"list schedules in {target.parent}"
    client = schedule_service(target)
    wanted = f'display_name="{exact}"' if exact else f'display_name:"{prefix}*"'
    request = {
        "parent": target.parent,
        "filter": wanted,
        "order_by": "create_time",
        "page_size": 100,
    }
    listed = calls.listing(
        what,
        client.list_schedules,
        request,
        lambda page: page.schedules,
        LIST_LIMIT,
        key=lambda schedule: schedule.name,
    )
    found: list[ScheduleState] = []
    for resource in listed:
        schedule = calls.schedule_answer(resource, None, what)
        display = schedule.get("display_name")
        if not isinstance(display, str) or not (
            display == exact if exact else display.startswith(prefix)
        ):
            continue
        found.append(read_state(what, schedule, target.parent, prefix))
    return found


def get(target: VertexTarget, resource: str, prefix: str) -> ScheduleState:
    """Reads one schedule (refusing an answer about another one)."""
    names.parse_schedule_name(resource, target.parent)
    what = f"read {resource}"
    answer = calls.call(
        what,
        schedule_service(target).get_schedule,
        name=resource,
        retry=read_retry(),
        timeout=calls.remaining(60.0),
        retried=False,
    )
    return read_state(what, calls.schedule_answer(answer, resource, what), target.parent, prefix)


def schedule_of(request: SubmitRequest, display: str, cron: str) -> Any:
    """The schedule resource of a run request, as the SDK's ``PipelineJobSchedule`` makes
    it (no network), with what its ``create`` adds: cron, concurrency, service account
    and network.

    Returns:
        ``(PipelineJobSchedule, Schedule)``: the SDK object and its resource.
    """
    from google.cloud import aiplatform

    init_sdk(request.target)
    job = pipeline_job(request)
    schedule = aiplatform.PipelineJobSchedule(
        pipeline_job=job,
        display_name=display,
        project=request.target.project,
        location=request.target.location,
    )
    resource = schedule._gca_resource
    resource.cron = cron
    resource.max_concurrent_run_count = MAX_CONCURRENT_RUNS
    run = resource.create_pipeline_job_request.pipeline_job
    if request.service_account:
        run.service_account = request.service_account
    if request.network:
        run.network = request.network
    return schedule, resource


def create(target: VertexTarget, request: SubmitRequest, display: str, cron: str) -> ScheduleState:
    """Creates the schedule with the SDK's ``PipelineJobSchedule.create``.

    A create is not repeated (the service names each new schedule): after a failure whose
    outcome is unclear, the caller looks for it by display name.

    Raises:
        RLHFError: the create failed, or the answer is malformed or about another schedule.
    """
    schedule, _ = schedule_of(request, display, cron)
    what = f"create schedule {display!r} in {target.parent}"
    calls.call(
        what,
        schedule.create,
        cron=cron,
        max_concurrent_run_count=MAX_CONCURRENT_RUNS,
        service_account=request.service_account,
        network=request.network,
        create_request_timeout=calls.remaining(60.0),
        retried=False,
    )
    answer = calls.schedule_answer(schedule._gca_resource, None, what)
    if answer.get("display_name") != display:
        raise PipelineError(
            f"{what}: the answer is about another schedule"
            f" ({str(answer.get('display_name'))[:200]!r}); refused",
            hint=calls.MALFORMED_HINT,
        )
    return read_state(what, answer, target.parent, display[: display.rfind(SEPARATOR) + 1])


def unset_problems(existing: ScheduleState, request: SubmitRequest) -> list[str]:
    """What an update would have to clear, which the service refuses to do."""
    new = {
        "serviceAccount": request.service_account or "",
        "network": request.network or "",
        "kmsKeyName": request.encryption_spec_key_name or "",
    }
    return [
        f"{key} is set on the schedule ({existing.sticky[field][:200]!r}) and not in these"
        " parameters: an update cannot clear it"
        for field, key in STICKY
        if existing.sticky.get(field) and not new[field]
    ]


def update(
    target: VertexTarget, existing: ScheduleState, request: SubmitRequest, display: str, cron: str
) -> ScheduleState:
    """Replaces an existing schedule's cron, concurrency and run request (a PATCH).

    Safe to repeat: the same update twice leaves the same schedule.

    Raises:
        RLHFError: the update failed, or the answer is about another schedule.
    """
    _, resource = schedule_of(request, display, cron)
    resource.name = existing.resource
    what = f"update {existing.resource}"
    answer = calls.call(
        what,
        schedule_service(target).update_schedule,
        schedule=resource,
        update_mask={"paths": list(UPDATE_MASK)},
        retry=read_retry(),
        timeout=calls.remaining(60.0),
        retried=False,
    )
    checked = calls.schedule_answer(answer, existing.resource, what)
    return read_state(what, checked, target.parent, display[: display.rfind(SEPARATOR) + 1])


def pause(target: VertexTarget, resource: str) -> None:
    """Pauses a schedule (no new runs; a run in progress goes on)."""
    _act(target, resource, "pause", "pause_schedule")


def resume(target: VertexTarget, resource: str) -> None:
    """Resumes a paused schedule (missed runs are not started: ``catch_up`` is false)."""
    _act(target, resource, "resume", "resume_schedule")


def _act(target: VertexTarget, resource: str, verb: str, method: str) -> None:
    names.parse_schedule_name(resource, target.parent)
    calls.call(
        f"{verb} {resource}",
        getattr(schedule_service(target), method),
        name=resource,
        retry=read_retry(),
        timeout=calls.remaining(60.0),
        retried=False,
    )


def delete(target: VertexTarget, resource: str) -> None:
    """Deletes a schedule and waits for the service to confirm it (runs it started go on)."""
    names.parse_schedule_name(resource, target.parent)
    what = f"delete {resource}"
    operation = calls.call(
        what,
        schedule_service(target).delete_schedule,
        name=resource,
        retry=read_retry(),
        timeout=calls.remaining(60.0),
        retried=False,
    )
    calls.call(what, operation.result, timeout=calls.remaining(120.0), retried=False)


@dataclass(frozen=True)
class LastRun:
    """The newest run a schedule started (texts from outside, not yet escaped)."""

    job_id: str
    state: str
    created: str


def last_run(target: VertexTarget, resource: str) -> LastRun | None:
    """The newest run schedule ``resource`` started, or None.

    Raises:
        RLHFError: the list could not be read, or names a run of another schedule.
    """
    from vertex_rlhf.cloud.monitor import short_state

    names.parse_schedule_name(resource, target.parent)
    what = f"list the runs of {resource}"
    client = pipeline_service(target)
    request = {
        "parent": target.parent,
        "filter": f'schedule_name="{resource}"',
        "order_by": "create_time desc",
        "page_size": 1,
    }
    listed = calls.listing(what, client.list_pipeline_jobs, request, lambda p: p.pipeline_jobs, 1)
    if not listed:
        return None
    name = str(listed[0].name)
    prefix = f"{target.parent}/pipelineJobs/"
    job_id = name[len(prefix) :] if name.startswith(prefix) else ""
    if names.job_id_problem(job_id):
        raise calls.malformed(what, f"a listed run is named {name[:200]!r}")
    job = calls.job_answer(listed[0], name, what)
    if job.get("schedule_name") != resource:
        raise calls.malformed(what, f"run {job_id} was not started by {resource}")
    return LastRun(job_id, short_state(job.get("state")), str(job.get("create_time") or ""))
