"""Use cases over runs: submit one, follow it, list, cancel.

There is one submit path: ``prepare`` builds the request (the template resolved by
digest, the parameters checked against its signature, the caching policy of
``vertex_ai.enable_caching``), ``send`` creates the job. The CLI and the Python API both
call these two.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vertex_rlhf.errors import ConfigError, PipelineError
from vertex_rlhf.usecases import parameters
from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.cloud.status import JobStatus, RunRow
    from vertex_rlhf.cloud.submission import SubmitRequest
    from vertex_rlhf.cloud.vertex import VertexTarget
    from vertex_rlhf.template.plan import Plan


@dataclass(frozen=True)
class SubmitOrder:
    """What to submit beyond the parameters.

    Attributes:
        template_path: a compiled template file to run (the Python API's choice);
            default: ``vertex_ai.template_version`` from the registry, or ``compiled/``.
        job_id: reuse this job id (a retry by hand); default a new unique one.
        parameter_values: the pipeline inputs to send instead of the parameters' own
            (checked against the template's signature all the same).
        enable_caching: overrides ``vertex_ai.enable_caching`` when not None.
        dry_run: resolve nothing remote (a registry version stays a tag).
    """

    template_path: Path | None = None
    job_id: str | None = None
    parameter_values: dict[str, Any] | None = None
    enable_caching: bool | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class Prepared:
    """A create request ready to send, and what the user should read first."""

    request: SubmitRequest
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@contextmanager
def prepared(setting: Setting, order: SubmitOrder = SubmitOrder()) -> Iterator[Prepared]:
    """``prepare`` with a scratch folder for a downloaded template, kept while in use."""
    with tempfile.TemporaryDirectory(prefix="rlhf-template-") as downloads:
        yield prepare(setting, order, Path(downloads))


def prepare(setting: Setting, order: SubmitOrder, downloads: Path) -> Prepared:
    """Builds the create request of a run; sends nothing but registry reads.

    Args:
        setting: the environment's checked parameters.
        order: what else to submit.
        downloads: where a registry template is downloaded (by digest).

    Raises:
        ConfigError: values the template does not take, local datasets, a bad job id or
            a version that is not compiled. PipelineError: no such template.
    """
    from vertex_rlhf.cloud import submission

    params, notes = setting.params, []
    if order.enable_caching is not None:
        vertex_ai = dataclasses.replace(params.vertex_ai, enable_caching=order.enable_caching)
        params = dataclasses.replace(params, vertex_ai=vertex_ai)
    v = params.vertex_ai
    notify = bool(v.notify_emails)
    if order.template_path is not None:
        template = explicit_template(order.template_path)
    elif v.template_registry and v.template_version:
        package = submission.local_template(setting.compiled).name
        if order.dry_run:
            ref = submission.variant_tag(v.template_version, notify)
            template = submission.TemplateRef(None, package, ref, "")
        else:
            template = submission.registry_template(
                v.template_registry, package, v.template_version, downloads, notify=notify
            )
    else:
        if v.template_version:
            _check_compiled_version(v.template_version, setting.compiled)
        template = submission.local_template(setting.compiled, v.template_version, notify=notify)
        if v.template_version:
            notes.append(
                f"note: vertex_ai.template_registry is not set, so version"
                f" {v.template_version} is the one compiled in {setting.compiled}/"
                f" ({template.path}), not a published one"
            )
    commit = submission.git_commit(setting.root)
    request = submission.build_request(params, setting.env, template, commit, order.job_id)
    if order.parameter_values is not None:
        from vertex_rlhf.template import signature

        values = dict(order.parameter_values)
        if template.path is not None:
            inputs = signature.template_inputs(template.path)
            signature.check_against_signature(values, inputs, template.path.name)
        request = dataclasses.replace(request, parameter_values=values)
    return Prepared(request, parameters.warnings(setting), notes)


def explicit_template(path: Path) -> Any:
    """A compiled template file named by the caller, as a ``TemplateRef``.

    Raises:
        PipelineError: no file there, or not a compiled pipeline.
    """
    from vertex_rlhf.cloud import registry, submission
    from vertex_rlhf.template import signature

    if not path.is_file():
        try:
            current = f"; the compiled one is {signature.current_template_path()}"
        except PipelineError:
            current = ""
        raise PipelineError(
            f"{path}: no compiled template there{current}",
            hint="run `make compile` and pass compiled/rlhf-tuning-<version>.yaml",
        )
    name, version = signature.template_identity(path)
    return submission.TemplateRef(path, name, version, registry.file_digest(path))


def _check_compiled_version(version: str, compiled: Path) -> None:
    """Without a registry a version is compiled/'s: it must be one compiled there.

    Raises:
        ConfigError: it is not, listing the versions compiled/ holds.
    """
    from vertex_rlhf.template.compiler import read_manifest

    known = sorted(read_manifest(compiled).get("templates", {}))
    if version not in known:
        raise ConfigError(
            [
                f"version {version!r}: vertex_ai.template_registry is not set, so versions"
                f" come from {compiled}/, which holds {', '.join(known) or 'none'}; give one"
                " of those, or set vertex_ai.template_registry to run a published version"
            ]
        )


def dry_run(setting: Setting, ready: Prepared) -> dict[str, Any]:
    """The request as the API would receive it, with the run's plan."""
    from vertex_rlhf.cloud import submission

    described = submission.describe(ready.request)
    described["plan"] = parameters.plan(setting).as_dict()
    return described


def booking(setting: Setting) -> Plan:
    """What a real submit books, for the confirmation a terminal is shown."""
    return parameters.plan(setting)


@dataclass(frozen=True)
class Submitted:
    """A created job."""

    name: str
    console_url: str
    target: VertexTarget


def send(ready: Prepared) -> Submitted:
    """Creates the job (a transient failure is retried without ever creating two).

    Raises:
        AuthError, NetworkError, PipelineError: the job could not be created.
    """
    from vertex_rlhf.cloud import submission

    name = submission.submit(ready.request)
    target = ready.request.target
    return Submitted(name, target.console_url(name), target)


def pipeline_job(ready: Prepared) -> Any:
    """The ``aiplatform.PipelineJob`` of a prepared run (the SDK checks input names)."""
    from vertex_rlhf.cloud import submission
    from vertex_rlhf.cloud.vertex import init_sdk

    init_sdk(ready.request.target)
    return submission.pipeline_job(ready.request)


@dataclass(frozen=True)
class Watch:
    """How to follow a run.

    Attributes:
        metrics_log: where new training points are appended (None: not recorded).
        poll_interval: seconds between polls after a change (backs off to 60).
        timeout: stop watching after this many seconds (the run goes on).
    """

    metrics_log: Path | None = None
    poll_interval: float = 15.0
    timeout: float | None = None


def metrics_log(job: str, chosen: str | Path | None) -> Path:
    """The run's metrics log: ``chosen``, or ``runs/<job id>.jsonl``."""
    return Path(chosen or f"runs/{job.rsplit('/', 1)[-1]}.jsonl")


def follow(
    target: VertexTarget,
    job: str,
    watch: Watch,
    out: TextIO | None = None,
    callback: Callable[[JobStatus], None] | None = None,
) -> JobStatus:
    """Watches a job to its end (or ``watch.timeout``); its last status.

    New training points in the job's event files are appended to the metrics log as
    they appear. The caller decides what the end means (``monitor.final_error``).

    Raises:
        AuthError, ConfigError, NetworkError, PipelineError: the job cannot be read.
    """
    from vertex_rlhf.cloud import metrics, monitor

    follower = metrics.MetricsFollower(watch.metrics_log, out=out) if watch.metrics_log else None
    try:
        watcher = monitor.PipelineMonitor(
            target,
            metrics_log=watch.metrics_log,
            min_interval=watch.poll_interval,
            max_interval=max(watch.poll_interval, 60.0),
            out=out,
            on_poll=follower,
        )
        return watcher.monitor_job_with_updates(job, timeout=watch.timeout, callback=callback)
    finally:
        if follower is not None:
            follower.files.close()


def job_status(target: VertexTarget, job: str) -> JobStatus:
    """Reads a job once and summarizes it (state, progress, stages, error, ...)."""
    from vertex_rlhf.cloud import monitor

    return monitor.PipelineMonitor(target).get_status(job)


def locate(setting: Setting, job: str) -> tuple[VertexTarget, str]:
    """Where a job lives: its own project and region when named in full, else the
    parameters'; and its resource name.

    Raises:
        ConfigError: a job id or resource name that is not one.
    """
    from vertex_rlhf.cloud.vertex import VertexTarget, target_of

    default = VertexTarget.from_params(setting.params)
    name = default.job_name(job)
    return target_of(name, default), name


def cancel(setting: Setting, job: str) -> str:
    """Asks Vertex to cancel a run; its resource name."""
    from vertex_rlhf.cloud import monitor

    target, name = locate(setting, job)
    monitor.cancel(target, name)
    return name


@dataclass(frozen=True)
class RunList:
    """The newest runs of the pipeline in one project and region."""

    pipeline: str
    parent: str
    runs: list[RunRow]


def pipeline_name(compiled: Path) -> str:
    """The pipeline's name, as compiled/ records it."""
    from vertex_rlhf.template.compiler import read_manifest

    return str(read_manifest(compiled).get("pipeline") or "rlhf-tuning")


def list_runs(setting: Setting, limit: int = 20) -> RunList:
    """Lists the newest runs of the pipeline, with state and version."""
    from vertex_rlhf.cloud import monitor
    from vertex_rlhf.cloud.vertex import VertexTarget

    target = VertexTarget.from_params(setting.params)
    pipeline = pipeline_name(setting.compiled)
    return RunList(pipeline, target.parent, monitor.list_runs(target, pipeline, limit))
