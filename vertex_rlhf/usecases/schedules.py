"""Use cases over schedules: create or update one, list them, pause, resume, delete.

A schedule runs a **published** template version, pinned by digest, with the run
request ``make submit`` would send (``runs.prepare``: one way to build it). There is
one schedule per environment and name: scheduling again updates it.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vertex_rlhf.errors import ConfigError, NetworkError, PipelineError, RLHFError
from vertex_rlhf.usecases import runs
from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.cloud.schedules import ScheduleState
    from vertex_rlhf.cloud.submission import SubmitRequest, TemplateRef
    from vertex_rlhf.cloud.vertex import VertexTarget
    from vertex_rlhf.config.values import Cron

DEFAULT_NAME = "default"


@dataclass(frozen=True)
class ScheduleOrder:
    """What to schedule.

    Attributes:
        cron: when (a checked cron expression, with its time zone).
        name: which schedule of the environment (one per environment and name).
        version: the published version (tag or digest); default
            ``vertex_ai.template_version``, else the version ``compiled/`` holds now.
    """

    cron: Cron
    name: str = DEFAULT_NAME
    version: str | None = None


@dataclass(frozen=True)
class Scheduled:
    """A schedule created or updated, and what it runs."""

    action: str  # "created" or "updated"
    schedule: ScheduleState
    template: TemplateRef
    display_name: str
    warnings: list[str] = field(default_factory=list)


def _make(setting: Setting, target: str) -> str:
    """A make command for this environment, as the user can paste it."""
    return f"make {target} ENV={shlex.quote(setting.spec)}"


def _published_version(setting: Setting, version: str | None) -> str:
    """The published version to schedule; refuses a local or unpublished one.

    Raises:
        ConfigError: no registry, or the version is not in it (with the fix).
    """
    from vertex_rlhf.cloud import registry, submission
    from vertex_rlhf.template.compiler import read_manifest

    v = setting.params.vertex_ai
    current = str(read_manifest(setting.compiled).get("current", ""))
    chosen = version or v.template_version or current
    publish = _make(setting, "publish")
    if not v.template_registry:
        raise ConfigError(
            [
                f"a schedule runs a published template version, and {setting.label} has no"
                " vertex_ai.template_registry (templates from compiled/ are local); fix: set"
                f" vertex_ai.template_registry, publish with `{publish}`, then schedule again"
            ]
        )
    package = submission.local_template(setting.compiled).name
    if registry.find(v.template_registry, package, chosen) is None:
        versions = _make(setting, "versions")
        if chosen.startswith("sha256:"):  # a digest names bytes: publishing makes no other
            raise ConfigError(
                [
                    f"digest {chosen} is not published in {v.template_registry}: a schedule"
                    f" runs a published version; fix: pick one that `{versions}` lists"
                    " (VERSION=...)"
                ]
            )
        also = (
            f" (`{publish}` publishes compiled/'s version {current})" if chosen != current else ""
        )
        raise ConfigError(
            [
                f"version {chosen!r} is not published in {v.template_registry}: a schedule"
                f" runs a published version; fix: publish it with `{publish}`{also}, or"
                f" pick one that `{versions}` lists (VERSION=...)"
            ]
        )
    return chosen


def booked_template(setting: Setting, version: str | None = None) -> TemplateRef:
    """The template a schedule would run, as far as it is known offline: its name and the
    version asked for (the registry pins the digest when the schedule is made)."""
    from vertex_rlhf.cloud import submission
    from vertex_rlhf.template.compiler import read_manifest

    current = str(read_manifest(setting.compiled).get("current", ""))
    chosen = version or setting.params.vertex_ai.template_version or current
    return submission.TemplateRef(None, runs.pipeline_name(setting.compiled), chosen, "")


def schedule(setting: Setting, order: ScheduleOrder) -> Scheduled:
    """Creates the environment's schedule ``order.name``, or updates it if it exists.

    Raises:
        ConfigError: an unpublished version, invalid parameters, or an update the
            service cannot make (a field it cannot clear).
        PipelineError: two schedules of that name exist, or an answer is malformed.
        AuthError, NetworkError: as the API answered.
    """
    from vertex_rlhf.cloud import schedules as cloud

    if setting.params.vertex_ai.enable_caching:
        # GCPC's importers are keyed on the dataset path, not on the files' content.
        raise ConfigError(
            [
                "vertex_ai.enable_caching=true: every scheduled run would reuse the first"
                " run's dataset imports (GCPC keys them on the path, not the files), so new"
                " files under a glob would be validated but never trained on; fix: leave"
                " vertex_ai.enable_caching unset (null) or false for a schedule"
            ]
        )
    version = _published_version(setting, order.version)
    vertex_ai = dataclasses.replace(setting.params.vertex_ai, template_version=version)
    pinned = dataclasses.replace(
        setting, params=dataclasses.replace(setting.params, vertex_ai=vertex_ai)
    )
    cron = str(order.cron)
    pipeline = runs.pipeline_name(setting.compiled)
    display = cloud.display_name(pipeline, setting.env, order.name)
    prefix = cloud.display_prefix(pipeline, setting.env)
    with runs.prepared(pinned, runs.SubmitOrder()) as ready:
        request = ready.request
        warnings = [*ready.notes, *ready.warnings]
        if request.experiment:
            warnings.append(
                f"vertex_ai.experiment ({request.experiment}) is not applied to scheduled"
                " runs: a schedule's runs are not added to an experiment"
            )
        target = request.target
        existing = cloud.list_schedules(target, prefix, exact=display)
        _refuse_duplicates(setting, order.name, existing)
        if existing:
            _check_updatable(setting, order.name, existing[0], request)
            state = cloud.update(target, existing[0], request, display, cron)
            return Scheduled("updated", state, request.template, display, warnings)
        state = _create(target, request, display, cron, prefix)
    return Scheduled("created", state, request.template, display, warnings)


def _create(
    target: VertexTarget, request: SubmitRequest, display: str, cron: str, prefix: str
) -> ScheduleState:
    """Creates the schedule; never leaves two of one name.

    A create whose outcome is unclear (the network failed after it was sent) is looked
    for by name and, if it was made, updated to this request. When another command created
    one of the same name meanwhile, the older schedule stays and this one is deleted again.
    """
    from vertex_rlhf.cloud import schedules as cloud

    try:
        state = cloud.create(target, request, display, cron)
    except NetworkError:
        found = cloud.list_schedules(target, prefix, exact=display)
        if len(found) != 1:
            raise
        return cloud.update(target, found[0], request, display, cron)
    found = cloud.list_schedules(target, prefix, exact=display)  # oldest first
    if len(found) > 1 and found[0].resource != state.resource:
        # Two commands raced: the oldest schedule stays, the newer ones remove themselves.
        cloud.delete(target, state.resource)
        others = ", ".join(s.resource for s in found if s.resource != state.resource)
        raise PipelineError(
            f"schedule {display!r} was created by someone else at the same time ({others});"
            " the one this command created was deleted again",
            hint="run the same command again: it updates that schedule",
        )
    return state


def _refuse_duplicates(setting: Setting, name: str, found: list[ScheduleState]) -> None:
    if len(found) > 1:
        raise PipelineError(
            f"{len(found)} schedules are named {name!r} in {setting.label}"
            f" ({', '.join(s.resource for s in found)}); there should be one",
            hint=f"`{_delete_command(setting, name)}` deletes them all; then schedule again",
        )


def _delete_command(setting: Setting, name: str) -> str:
    return f"{_make(setting, 'schedule-delete')} NAME={name}"


def _check_updatable(
    setting: Setting, name: str, existing: ScheduleState, request: SubmitRequest
) -> None:
    from vertex_rlhf.cloud import schedules as cloud

    problems = cloud.unset_problems(existing, request)
    if existing.state == "COMPLETED":
        problems.append(f"schedule {name!r} has completed: the service updates no completed one")
    if problems:
        fix = f"; fix: delete it (`{_delete_command(setting, name)}`), then schedule again"
        raise ConfigError([f"schedule {name!r}: {p}{fix}" for p in problems])


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule of an environment, for the listing (texts from outside)."""

    name: str
    cron: str
    state: str
    version: str
    digest: str
    next_run: str
    last_run: str
    last_run_state: str
    last_job: str
    resource: str


@dataclass(frozen=True)
class ScheduleList:
    """The schedules of one environment's pipeline in one project and region."""

    env: str
    parent: str
    rows: list[ScheduleRow]


def _target(setting: Setting) -> VertexTarget:
    from vertex_rlhf.cloud.vertex import VertexTarget

    return VertexTarget.from_params(setting.params)


def _versions_by_digest(setting: Setting) -> dict[str, str]:
    """The versions compiled/ records, by the ``sha256:`` digest of their files."""
    from vertex_rlhf.template.compiler import read_manifest

    found: dict[str, str] = {}
    try:
        templates = read_manifest(setting.compiled).get("templates", {})
    except (ConfigError, PipelineError):
        return found
    for version, entry in templates.items():
        if isinstance(entry, dict) and entry.get("sha256"):
            found[f"sha256:{entry['sha256']}"] = str(version)
        notify = entry.get("notify") if isinstance(entry, dict) else None
        if isinstance(notify, dict) and notify.get("sha256"):
            found[f"sha256:{notify['sha256']}"] = f"{version}-notify"
    return found


def list_schedules(setting: Setting) -> ScheduleList:
    """The environment's schedules, with their last run and its state."""
    from vertex_rlhf.cloud import schedules as cloud

    target = _target(setting)
    prefix = cloud.display_prefix(runs.pipeline_name(setting.compiled), setting.env)
    versions = _versions_by_digest(setting)
    rows = []
    for state in cloud.list_schedules(target, prefix):
        last = cloud.last_run(target, state.resource)
        rows.append(
            ScheduleRow(
                name=state.name,
                cron=state.cron,
                state=state.state,
                version=versions.get(state.digest) or state.version_label or "?",
                digest=state.digest,
                next_run=state.next_run,
                last_run=(last.created if last else "") or state.last_scheduled,
                last_run_state=last.state if last else "",
                last_job=last.job_id if last else "",
                resource=state.resource,
            )
        )
    return ScheduleList(setting.env, target.parent, rows)


@dataclass(frozen=True)
class Changed:
    """What a pause, resume or delete did to the schedules of one name."""

    name: str
    verb: str
    done: list[str]  # resource names acted on
    unchanged: list[str]  # already in the wanted state


def _named(setting: Setting, name: str) -> tuple[VertexTarget, list[ScheduleState]]:
    """The schedules of ``name`` (one, or the duplicates someone made).

    Raises:
        ConfigError: there is none, naming those that exist.
    """
    from vertex_rlhf.cloud import schedules as cloud

    target = _target(setting)
    pipeline = runs.pipeline_name(setting.compiled)
    prefix = cloud.display_prefix(pipeline, setting.env)
    found = cloud.list_schedules(
        target, prefix, exact=cloud.display_name(pipeline, setting.env, name)
    )
    if not found:
        others = sorted({s.name for s in cloud.list_schedules(target, prefix)})
        shown = ", ".join(repr(o[:60]) for o in others[:20]) or "none"
        raise ConfigError(
            [
                f"no schedule named {name!r} in {setting.label} ({target.parent});"
                f" its schedules: {shown}; `{_make(setting, 'schedules')}` lists them"
            ]
        )
    return target, found


def pause(setting: Setting, name: str) -> Changed:
    """Pauses schedule ``name``: no new runs until it is resumed."""
    from vertex_rlhf.cloud import schedules as cloud

    _, found = _named(setting, name)
    done, unchanged = [], []
    for state in found:
        if state.state == "PAUSED":
            unchanged.append(state.resource)
            continue
        if state.state == "COMPLETED":
            raise ConfigError([f"schedule {name!r} has completed; a completed one is not paused"])
        _settle(setting, name, state, cloud.pause, "PAUSED")
        done.append(state.resource)
    return Changed(name, "paused", done, unchanged)


def resume(setting: Setting, name: str) -> Changed:
    """Resumes schedule ``name`` (runs it missed while paused are not started)."""
    from vertex_rlhf.cloud import schedules as cloud

    _, found = _named(setting, name)
    done, unchanged = [], []
    for state in found:
        if state.state == "ACTIVE":
            unchanged.append(state.resource)
            continue
        if state.state == "COMPLETED":
            raise ConfigError(
                [
                    f"schedule {name!r} has completed; a completed one is not resumed; fix:"
                    f" `{_delete_command(setting, name)}`, then schedule again"
                ]
            )
        _settle(setting, name, state, cloud.resume, "ACTIVE")
        done.append(state.resource)
    return Changed(name, "resumed", done, unchanged)


def delete(setting: Setting, name: str) -> Changed:
    """Deletes schedule ``name`` (every schedule of that name); its runs go on."""
    from vertex_rlhf.cloud import schedules as cloud

    _, found = _named(setting, name)
    for state in found:
        _settle(setting, name, state, cloud.delete, None)
    return Changed(name, "deleted", [s.resource for s in found], [])


def _settle(
    setting: Setting,
    name: str,
    state: ScheduleState,
    act: Callable[[VertexTarget, str], None],
    wanted: str | None,
) -> None:
    """Runs a pause, resume or delete; when it fails, reads the schedule again: a call whose
    answer was lost after it took effect (a retry then meets "already paused", "not found")
    is done, not an error.

    Args:
        wanted: the state it should be in afterwards; None: gone.
    """
    from vertex_rlhf.cloud import schedules as cloud

    target = _target(setting)
    try:
        act(target, state.resource)
    except RLHFError:
        pipeline = runs.pipeline_name(setting.compiled)
        now = cloud.list_schedules(
            target,
            cloud.display_prefix(pipeline, setting.env),
            exact=cloud.display_name(pipeline, setting.env, name),
        )
        mine = [s for s in now if s.resource == state.resource]
        if (not mine and wanted is None) or (mine and mine[0].state == wanted):
            return
        raise
