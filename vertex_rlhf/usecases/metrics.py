"""Use cases over a run's training metrics: read them into a log, compare runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vertex_rlhf.errors import ConfigError
from vertex_rlhf.usecases import runs
from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.cloud.compare import RunFacts
    from vertex_rlhf.cloud.metrics import MetricSummary, Point


@dataclass(frozen=True)
class RunMetrics:
    """A run's metrics after reading its event files into its log."""

    job_name: str
    job_id: str
    log: Path
    added: int
    points: list[Point]
    summaries: list[MetricSummary]
    warnings: list[str] = field(default_factory=list)


def read_metrics(setting: Setting, job: str, log: str | Path | None = None) -> RunMetrics:
    """Reads a run's TensorBoard event files; appends new points to its metrics log.

    Raises:
        AuthError, NetworkError, PipelineError: the job or its files cannot be read.
        DataError: a damaged event file or log.
    """
    from vertex_rlhf.cloud import metrics

    target, name = runs.locate(setting, job)
    path = runs.metrics_log(name, log)
    return metrics_of(metrics.read_job(target, name), name, path)


def metrics_of(found: dict[str, Any], name: str, path: Path) -> RunMetrics:
    """``read_metrics`` for a job already read (``PipelineJob.to_dict``): its event files
    synced into the log at ``path``, and the log's points and summaries.

    Raises:
        AuthError, NetworkError, PipelineError: the files cannot be read.
        DataError: a damaged event file or log.
    """
    from vertex_rlhf.cloud import metrics

    with metrics.EventFiles() as files:
        added, warnings = metrics.sync(found, path, files)
    points = metrics.logged_points(metrics.read_log(path))
    return RunMetrics(
        name,
        name.rsplit("/", 1)[-1],
        path,
        len(added),
        points,
        metrics.summarize(points),
        list(warnings),
    )


def compare(setting: Setting, jobs: list[str], last: int | None = None) -> list[RunFacts]:
    """Gathers runs side by side: the named ones, or the newest ``last`` of the env.

    Raises:
        ConfigError: both or a bad job name. RLHFError: a run cannot be read.
    """
    from vertex_rlhf.cloud import compare as comparing
    from vertex_rlhf.cloud.vertex import VertexTarget

    default = VertexTarget.from_params(setting.params)
    if last is not None and jobs:
        raise ConfigError(["name the runs (JOBS=) or ask for the newest ones (LAST=), not both"])
    if last is not None:
        pipeline = runs.pipeline_name(setting.compiled)
        names = comparing.last_runs(default, pipeline, setting.env, last)
    else:
        names = comparing.job_names(default, jobs)
    return comparing.gather(default, names)
