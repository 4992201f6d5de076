"""Training metrics of a run: GCPC's TensorBoard event files, read into the JSONL log.

The reward-model trainer and the reinforcer write event files to their
``tensorboard_metrics`` output artifact. ``metric_sources`` finds those artifacts in the
job's task details; ``EventFiles`` reads the event files through google-cloud-storage
(only files that changed since the last look), with TensorBoard's compatibility layers;
``sync`` appends the points not logged yet to the run's JSONL metrics log, as
``{"timestamp", "job_id", "stage", "metrics": {name: value, "step": step}}``.
``MetricsFollower`` does the same on every poll of ``make monitor``. The event files are
streamed from Cloud Storage and their TFRecord framing read here (length and checksums
checked, records bounded), so memory stays flat whatever their size and nothing is left
on disk; the log is appended under a lock, whole lines only.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TextIO

from vertex_rlhf.cloud import calls
from vertex_rlhf.cloud.monitor import TERMINAL, job_status
from vertex_rlhf.cloud.vertex import VertexTarget, pipeline_service, read_retry
from vertex_rlhf.data.writes import append_locked, exclusive
from vertex_rlhf.errors import DataError, RLHFError

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


@dataclass(frozen=True, slots=True)  # slots: a run has hundreds of thousands
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
    match = GS_URI.fullmatch(uri)
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
    stages = {t.name: t.stage for t in job_status(job).tasks}
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


# A scalar event is tens of bytes; an image or histogram record rarely passes a few MiB.
# A length above this is a damaged file (or not an event file), never an allocation.
MAX_RECORD = 256 << 20
_HEADER = struct.Struct("<QI")  # TFRecord: length, masked CRC-32C of the length
_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum of ``data``: CRC-32C, rotated right by 15 bits, plus a delta."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def tf_records(handle: IO[bytes], name: str) -> Iterator[bytes]:
    """The records of a TFRecord stream, read one at a time (flat memory).

    A record cut short at the end (a file still being written) ends the stream, as in
    TensorBoard; a record whose length or data fails its checksum, or whose header
    announces more than ``MAX_RECORD`` bytes, is a coded error.

    Args:
        handle: a binary stream (a local file or a Cloud Storage object).
        name: the file's name, for messages.

    Raises:
        DataError: a damaged record, naming the file and the byte it starts at.
    """
    offset = 0
    while True:
        header = handle.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) != length_crc:
            raise _damaged(name, offset, "its length fails its checksum")
        if length > MAX_RECORD:
            raise _damaged(
                name, offset, f"it announces {length:,} bytes (at most {MAX_RECORD:,} expected)"
            )
        body = handle.read(length + 4)
        if len(body) < length + 4:
            return
        data = body[:length]
        if masked_crc32c(data) != int.from_bytes(body[length:], "little"):
            raise _damaged(name, offset, "its data fails its checksum")
        yield data
        offset += _HEADER.size + length + 4


def _damaged(name: str, offset: int, why: str) -> DataError:
    return DataError(
        f"{name}: the event record at byte {offset} is damaged: {why}",
        hint="the file is not a TensorBoard event file or was damaged; remove it from the"
        " artifact folder (the points before it are kept) and run the command again",
    )


def scalars(handle: IO[bytes], name: str, stage: str, run: str = "") -> Iterator[Point]:
    """The scalar points of one event file, streamed (see ``tf_records``).

    Events pass TensorBoard's read-time compatibility layers (TF1 ``simple_value``
    summaries become scalar tensors), as its own loader does.

    Args:
        handle: the event file's bytes.
        name: its name, for messages.
        stage: the stage the points belong to.
        run: the file's folder below the artifact root; prefixes tag names (``eval/loss``).
    """
    from tensorboard import data_compat, dataclass_compat
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    initial: dict[str, Any] = {}
    data_class: dict[str, int] = {}
    names: dict[str, str] = {}  # one string per metric name, not one per point
    for record in tf_records(handle, name):
        try:
            parsed = event_pb2.Event.FromString(record)
        except Exception:  # protobuf's DecodeError: not an event
            continue
        for event in dataclass_compat.migrate_event(data_compat.migrate_event(parsed), initial):
            if event.WhichOneof("what") != "summary":
                continue
            for value in event.summary.value:
                # The compatibility layer keeps a tag's metadata on its first value only.
                if value.metadata.data_class:
                    data_class[value.tag] = value.metadata.data_class
                if data_class.get(value.tag) != summary_pb2.DATA_CLASS_SCALAR:
                    continue
                array = tensor_util.make_ndarray(value.tensor)
                if array.size != 1 or array.dtype.kind not in "fiu":
                    continue
                # str() of a numpy float32 is its shortest repr: 0.6, not 0.6000000238418579.
                number = float(str(array.reshape(-1)[0]))
                tag = names.get(value.tag)
                if tag is None:
                    tag = f"{run}/{value.tag}" if run else value.tag
                    tag = names[value.tag] = "scalar/step" if tag == "step" else tag
                yield Point(
                    stage,
                    tag,
                    int(event.step),
                    number if math.isfinite(number) else None,
                    float(event.wall_time),
                )


def read_scalars(path: Path, stage: str, run: str = "") -> Iterator[Point]:
    """The scalars of one local event file (see ``scalars``)."""
    with path.open("rb", buffering=1 << 20) as handle:
        yield from scalars(handle, str(path), stage, run)


@dataclass
class EventFiles:
    """Event files of metric sources, read straight from Cloud Storage when they change.

    Nothing is downloaded to disk: each object is streamed in ranges (pinned to the
    generation listed, counted against its size, see ``files.ObjectReader``).

    Attributes:
        client: a google-cloud-storage client (default: created on first use).
    """

    client: Any = None
    _seen: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __enter__(self) -> EventFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to remove: kept so that callers may use ``with``."""

    def changed_points(self, source: MetricSource) -> list[Point]:
        """The points of every event file of ``source`` that changed since the last call."""
        from vertex_rlhf.data.files import split_gs, storage_client

        self.client = self.client or storage_client()
        try:
            return self._read(source, split_gs(source.uri))
        except RLHFError:
            raise
        except Exception as error:
            raise calls.coded(error, f"read {source.uri}") from None

    def _read(self, source: MetricSource, location: tuple[str, str]) -> list[Point]:
        import io

        from vertex_rlhf.data.files import ObjectReader

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
            run = relative.rsplit("/", 1)[0] if "/" in relative else ""
            with io.BufferedReader(ObjectReader(blob, key), 1 << 20) as handle:
                points.extend(scalars(handle, key, source.stage, run))
            self._seen[key] = version
        return points


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL metrics log (none if it does not exist; bad lines skipped)."""
    return list(iter_log(path))


def iter_log(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL metrics log one at a time (see ``read_log``).

    A last line cut short by a writer that died mid-line is skipped like any bad line
    (and cut by the next writer, see ``writes.append_locked``).
    """
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


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


def log_new_points(log: Path, job_id: str, points: Iterable[Point]) -> list[dict[str, Any]]:
    """Appends the points not in ``log`` yet, holding the log's lock from read to write.

    Two writers at once (``make metrics`` beside ``make monitor``) take turns: the second
    sees what the first wrote and adds nothing twice.

    Returns:
        The records appended.

    Raises:
        DataError: the disk is full (the log is left ending with a whole line).
    """
    with exclusive(log):
        records = new_records(job_id, points, logged_points(iter_log(log)))
        append_locked(log, (json.dumps(r, sort_keys=True) for r in records))
    return records


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
    return log_new_points(log, job.get("name", ""), points), warnings


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
            records = log_new_points(self.log, job.get("name", ""), points)
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
