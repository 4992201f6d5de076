"""What GCPC's trainers leave behind, made for tests: real TensorBoard event files in the
storage emulator, and job timelines whose task details point at them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.standins.vertex import Step, scale, timeline_success

# A scalar series: tag -> [(step, value), ...]
Series = dict[str, list[tuple[int, float]]]
DATASET_TASKS = {"validate-dataset": 3000, "validate-dataset-2": 2000, "validate-dataset-3": 100}


def write_events(folder: Path, series: Series, legacy: bool = False) -> Path:
    """Writes one event file with TensorBoard's own writers; returns it.

    Args:
        folder: where the file goes (created).
        series: the scalars.
        legacy: write TF1-style ``simple_value`` summaries (as older trainers do) through
            the low-level ``EventFileWriter``, instead of ``tensorboard.summary.Writer``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    points = sorted((step, tag, value) for tag, values in series.items() for step, value in values)
    if legacy:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        legacy_writer = EventFileWriter(str(folder))
        for step, tag, value in points:
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
            )
            legacy_writer.add_event(
                event_pb2.Event(wall_time=1_800_000_000 + step, step=step, summary=summary)
            )
        legacy_writer.close()
    else:
        from tensorboard.summary import Writer

        writer = Writer(str(folder))
        for step, tag, value in points:
            writer.add_scalar(tag, value, step, wall_time=1_800_000_000 + step)
        writer.close()
    (written,) = set(folder.iterdir()) - before
    return written


def upload(local: Path, uri: str) -> None:
    """Uploads a file to ``gs://bucket/name`` in the storage emulator (bucket made if new)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    client = storage.Client(project="emulator", credentials=AnonymousCredentials())
    bucket_name, _, name = uri[len("gs://") :].partition("/")
    bucket = client.lookup_bucket(bucket_name) or client.create_bucket(bucket_name)
    bucket.blob(name).upload_from_filename(str(local))


def publish_events(tmp: Path, uri: str, series: Series, legacy: bool = False) -> str:
    """Writes an event file and uploads it into the artifact folder ``uri``."""
    local = write_events(tmp, series, legacy)
    upload(local, f"{uri}/{local.name}")
    return f"{uri}/{local.name}"


def with_training_outputs(
    timeline: list[Step],
    artifacts: dict[str, str],
    rows: dict[str, int] | None = None,
) -> list[Step]:
    """The timeline, with each trainer's ``tensorboard_metrics`` artifact from the moment
    it appears, and each dataset check's ``rows`` output once it has succeeded.

    Args:
        timeline: e.g. ``timeline_success()``.
        artifacts: task name -> artifact URI.
        rows: dataset-check task -> row count (default ``DATASET_TASKS``).
    """
    rows = rows or DATASET_TASKS
    steps = []
    for step in timeline:
        made = {
            task: {"tensorboard_metrics": [uri]}
            for task, uri in artifacts.items()
            if task in step.tasks
        }
        outputs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in step.outputs.items()}
        for task, count in rows.items():
            if step.tasks.get(task) == "SUCCEEDED":
                outputs.setdefault(task, {})["rows"] = count
                outputs[task]["layout"] = "text"
        steps.append(replace(step, artifacts=made, outputs=outputs))
    return steps


def run_timeline(
    hour: float, bucket: str, job: str, rows: dict[str, int] | None = None
) -> tuple[list[Step], dict[str, str]]:
    """A successful run of ``hour`` seconds (every step scaled) whose trainers write to
    ``gs://bucket/job/<task>/tensorboard_metrics``."""
    artifacts = {
        task: f"gs://{bucket}/{job}/{task}/tensorboard_metrics"
        for task in ("reward-model-trainer", "reinforcer")
    }
    timeline = scale(timeline_success(3600.0), hour / 3600.0)
    return with_training_outputs(timeline, artifacts, rows), artifacts
