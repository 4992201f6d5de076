"""Training metrics of a run: GCPC's TensorBoard event files, read into the JSONL log.

The reward-model trainer and the reinforcer write event files to their
``tensorboard_metrics`` output artifact. ``metric_sources`` finds those artifacts in the
job's task details; ``EventFiles`` downloads the event files through google-cloud-storage
(only files that changed since the last look) and reads them with TensorBoard's own
loader; ``sync`` appends the points not logged yet to the run's JSONL metrics log, as
``{"timestamp", "job_id", "stage", "metrics": {name: value, "step": step}}``.
``MetricsFollower`` does the same on every poll of ``make monitor``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from vertex_rlhf.cloud import calls
from vertex_rlhf.cloud.monitor import TERMINAL, job_status
from vertex_rlhf.cloud.vertex import VertexTarget, pipeline_service, read_retry
from vertex_rlhf.errors import RLHFError

# Stages of the metrics log, in run order, and the monitor's stage names they come from.
STAGES = ("reward_model", "reinforcement_learning")
_FROM_MONITOR = {"reward model": "reward_model", "reinforcement learning": "reinforcement_learning"}
_FROM_TASK = {"reward-model-trainer": "reward_model", "reinforcer": "reinforcement_learning"}
OUTPUT = "tensorboard_metrics"
# Cloud Storage bucket names: 3-63 characters (up to 222 with dots), lower case.
GS_URI = re.compile(r"^gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(.+)$")
EVENT_FILE = ".tfevents."
MAX_EVENT_OBJECTS = 10_000  # objects listed under one metrics artifact, at most
# Names where a lower value is better; every other metric (reward, accuracy) is higher-better.
LOWER_IS_BETTER = re.compile(r"loss|error|kl|perplexity", re.IGNORECASE)


@dataclass(frozen=True)
class MetricSource:
    """One ``tensorboard_metrics`` artifact of a task.

    Attributes:
        stage: ``reward_model`` or ``reinforcement_learning``.
        task: the task that wrote it.
        uri: ``gs://bucket/prefix`` of the artifact (a folder of event files).
        finished: the task had ended when the job was read (its files are final).
    """

    stage: str
    task: str
    uri: str
    finished: bool


@dataclass(frozen=True)
class Point:
    """One scalar: ``value`` is None when the trainer logged NaN or infinity."""

    stage: str
    name: str
    step: int
    value: float | None
    wall_time: float


@dataclass(frozen=True)
class MetricSummary:
    """First, last and best value of one metric, and its trend over the last tenth."""

    stage: str
    name: str
    points: int
    first: float
    last: float
    best: float
    best_step: int
    lower_is_better: bool
    trend: float
    non_finite: int


def gs_uri(uri: str) -> str | None:
    """The artifact URI as ``gs://bucket/prefix``, or None if it is not a Cloud Storage one.

    Vertex reports ``gs://`` URIs; the ``/gcs/`` mount form is accepted too.
    """
    if uri.startswith("/gcs/"):
        uri = "gs://" + uri[len("/gcs/") :]
    match = GS_URI.match(uri)
    if not match or any(part in ("", ".", "..") for part in match.group(2).rstrip("/").split("/")):
        return None
    return uri.rstrip("/")


def metric_sources(job: dict[str, Any]) -> tuple[list[MetricSource], list[str]]:
    """The ``tensorboard_metrics`` artifacts in a job's task details.

    Args:
        job: the job as ``PipelineJob.to_dict(job, use_integers_for_enums=False)``.

    Returns:
        The sources in stage order, and warnings about artifacts that were skipped.
    """
    stages = {t["name"]: t["stage"] for t in job_status(job)["tasks"]}
    sources, warnings = [], []
    for detail in job.get("job_detail", {}).get("task_details", []):
        name = detail.get("task_name", "")
        artifacts = ((detail.get("outputs") or {}).get(OUTPUT) or {}).get("artifacts") or []
        stage = _FROM_TASK.get(name) or _FROM_MONITOR.get(stages.get(name) or "")
        for artifact in artifacts:
            uri = gs_uri(artifact.get("uri", ""))
            if stage is None or uri is None:
                warnings.append(f"{name}: skipped {OUTPUT} at {artifact.get('uri', '')!r}")
                continue
            finished = detail.get("state", "") in TERMINAL
            sources.append(MetricSource(stage, name, uri, finished))
    sources.sort(key=lambda s: STAGES.index(s.stage))
    return sources, warnings


def read_scalars(path: Path, stage: str, run: str = "") -> Iterator[Point]:
    """The scalars of one event file, read with TensorBoard's event-file loader.

    A record cut short (a file still being written) ends the file, as in TensorBoard.

    Args:
        path: a local event file.
        stage: the stage the points belong to.
        run: the file's folder below the artifact root; prefixes tag names (``eval/loss``).
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    data_class: dict[str, int] = {}
    for event in EventFileLoader(str(path)).Load():
        if event.WhichOneof("what") != "summary":
            continue
        for value in event.summary.value:
            # The loader keeps a tag's metadata on its first value only.
            if value.metadata.data_class:
                data_class[value.tag] = value.metadata.data_class
            if data_class.get(value.tag) != summary_pb2.DATA_CLASS_SCALAR:
                continue
            array = tensor_util.make_ndarray(value.tensor)
            if array.size != 1 or array.dtype.kind not in "fiu":
                continue
            # str() of a numpy float32 is its shortest repr: 0.6, not 0.6000000238418579.
            number = float(str(array.reshape(-1)[0]))
            name = f"{run}/{value.tag}" if run else value.tag
            yield Point(
                stage,
                "scalar/step" if name == "step" else name,
                int(event.step),
                number if math.isfinite(number) else None,
                float(event.wall_time),
            )


@dataclass
class EventFiles:
    """Event files of metric sources, downloaded to a local folder when they change.

    Attributes:
        folder: where downloads go (a fresh temporary folder by default).
        client: a google-cloud-storage client (default: created on first use).
    """

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rlhf-events-")))
    client: Any = None
    _seen: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __enter__(self) -> EventFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Removes the downloaded files."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def changed_points(self, source: MetricSource) -> list[Point]:
        """The points of every event file of ``source`` that changed since the last call."""
        from vertex_rlhf.data.files import split_gs, storage_client

        self.client = self.client or storage_client()
        try:
            return self._read(source, split_gs(source.uri))
        except Exception as error:
            raise calls.coded(error, f"read {source.uri}") from None

    def _read(self, source: MetricSource, location: tuple[str, str]) -> list[Point]:
        bucket, prefix = location
        points: list[Point] = []
        what = f"read {source.uri}"
        found = self.client.list_blobs(
            bucket, prefix=prefix + "/", timeout=calls.remaining(60.0), retry=read_retry()
        )
        listed = calls.bounded_pages(
            what, found.pages, list, MAX_EVENT_OBJECTS, lambda _: found.next_page_token
        )
        for blob in listed:
            relative = blob.name[len(prefix) + 1 :]
            if EVENT_FILE not in relative.rsplit("/", 1)[-1]:
                continue
            key = f"gs://{bucket}/{blob.name}"
            version = (blob.generation, blob.size)
            if self._seen.get(key) == version:
                continue
            # The local name is a hash: object names never become paths.
            local = self.folder / hashlib.sha256(key.encode()).hexdigest()
            calls.call(
                f"download {key}",
                blob.download_to_filename,
                str(local),
                timeout=calls.remaining(120.0),
                retry=read_retry(),
                retried=False,
            )
            self._seen[key] = version
            run = relative.rsplit("/", 1)[0] if "/" in relative else ""
            points.extend(read_scalars(local, source.stage, run))
        return points


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL metrics log (none if it does not exist; bad lines skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def logged_points(records: Iterable[dict[str, Any]]) -> list[Point]:
    """The training-metric points among a log's records (not the task-state records)."""
    points = []
    for record in records:
        metrics = record.get("metrics")
        stage = record.get("stage")
        if stage not in STAGES or not isinstance(metrics, dict):
            continue
        step = metrics.get("step")
        if not isinstance(step, int):
            continue
        try:
            wall = datetime.fromisoformat(str(record.get("timestamp"))).timestamp()
        except ValueError:
            wall = 0.0
        for name, value in metrics.items():
            if name != "step" and (value is None or isinstance(value, (int, float))):
                points.append(Point(stage, name, step, value, wall))
    return points


def new_records(job_id: str, points: Iterable[Point], logged: Iterable[Point]) -> list[dict]:
    """Log records for the points not logged yet: one per stage and step, in run order.

    Args:
        job_id: the job's resource name.
        points: points read from the event files (repeats are fine).
        logged: points already in the log.
    """
    seen = {(p.stage, p.name, p.step) for p in logged}
    grouped: dict[tuple[str, int], dict[str, Any]] = {}
    stamps: dict[tuple[str, int], float] = {}
    for point in points:
        if (point.stage, point.name, point.step) in seen:
            continue
        seen.add((point.stage, point.name, point.step))
        key = (point.stage, point.step)
        grouped.setdefault(key, {})[point.name] = point.value
        stamps[key] = max(stamps.get(key, 0.0), point.wall_time)
    records = []
    for stage, step in sorted(grouped, key=lambda k: (STAGES.index(k[0]), k[1])):
        stamp = datetime.fromtimestamp(stamps[(stage, step)], timezone.utc).isoformat()
        metrics = {**dict(sorted(grouped[(stage, step)].items())), "step": step}
        records.append({"timestamp": stamp, "job_id": job_id, "stage": stage, "metrics": metrics})
    return records


def append_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Appends records to the log in one write."""
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    with path.open("a", encoding="utf-8") as log:
        log.write(text)


def sync(job: dict[str, Any], log: Path, files: EventFiles) -> tuple[list[dict], list[str]]:
    """Appends the job's metric points that are not in ``log`` yet.

    Args:
        job: the job as ``PipelineJob.to_dict``.
        log: the run's JSONL metrics log.
        files: event files already read (only changed ones are read again).

    Returns:
        The records appended, and warnings.
    """
    sources, warnings = metric_sources(job)
    points = [p for source in sources for p in files.changed_points(source)]
    records = new_records(job.get("name", ""), points, logged_points(read_log(log)))
    append_records(log, records)
    return records, warnings


def summarize(points: Iterable[Point]) -> list[MetricSummary]:
    """First, last, best and the trend over the last tenth of each metric, in run order.

    The trend is the change from the first to the last point of the last tenth of the
    steps (at least two points).
    """
    series: dict[tuple[str, str], list[Point]] = {}
    for point in sorted(points, key=lambda p: p.step):
        series.setdefault((point.stage, point.name), []).append(point)
    summaries = []
    for (stage, name), all_points in sorted(
        series.items(), key=lambda item: (STAGES.index(item[0][0]), item[0][1])
    ):
        finite = [p for p in all_points if p.value is not None]
        if not finite:
            continue
        lower = bool(LOWER_IS_BETTER.search(name))
        pick = min if lower else max
        best = pick(finite, key=lambda p: p.value or 0.0)
        tail = finite[-max(2, math.ceil(len(finite) / 10)) :]
        summaries.append(
            MetricSummary(
                stage=stage,
                name=name,
                points=len(finite),
                first=finite[0].value or 0.0,
                last=finite[-1].value or 0.0,
                best=best.value or 0.0,
                best_step=best.step,
                lower_is_better=lower,
                trend=(tail[-1].value or 0.0) - (tail[0].value or 0.0),
                non_finite=len(all_points) - len(finite),
            )
        )
    return summaries


def read_job(target: VertexTarget, name: str) -> dict[str, Any]:
    """Reads a job resource as a dict (``PipelineJob.to_dict``)."""
    what = f"read {name}"
    client = pipeline_service(target)
    resource = calls.call(
        what,
        client.get_pipeline_job,
        name=name,
        retry=read_retry(),
        timeout=calls.remaining(60.0),
        retried=False,
    )
    return calls.job_answer(resource, name, what)


class MetricsFollower:
    """The monitor's hook: on every poll, appends new metric points to the log.

    A Cloud Storage problem is reported once and never stops the monitor.

    Args:
        log: the run's JSONL metrics log.
        out: where a line per batch of new points goes.
        files: event-file cache (default: a fresh one).
    """

    def __init__(
        self, log: Path, out: TextIO | None = None, files: EventFiles | None = None
    ) -> None:
        self.log = log
        self.out = out or sys.stdout
        self.files = files or EventFiles()
        self.done: set[str] = set()
        self.problems: set[str] = set()

    def __call__(self, job: dict[str, Any]) -> None:
        try:
            sources, _ = metric_sources(job)
            pending = [s for s in sources if s.uri not in self.done]
            if not pending:
                return
            points = [p for s in pending for p in self.files.changed_points(s)]
            # A task that had ended before its files were read has written them all.
            self.done.update(s.uri for s in pending if s.finished)
            records = new_records(job.get("name", ""), points, logged_points(read_log(self.log)))
            append_records(self.log, records)
        except (RLHFError, OSError, ValueError) as error:
            self._problem(str(error))
            return
        except Exception as error:  # storage API errors: report, keep monitoring
            self._problem(f"{type(error).__name__}: {error}")
            return
        if records:
            last = records[-1]
            latest = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in last["metrics"].items()
            )
            print(f"  metrics: +{len(records)} step(s); {last['stage']}: {latest}", file=self.out)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.add(text)
            print(f"  metrics: cannot read the event files yet ({text})", file=self.out)
