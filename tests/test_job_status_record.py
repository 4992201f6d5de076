"""The job status is a typed record inside the library (``cloud.status.JobStatus``); the
original Python API's users get it as the dict the README documents, key for key."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest

from tests.conftest import REPO, TEST_PROJECT, FakeClock
from tests.standins.vertex import Step, VertexStandIn, timeline_long_running, timeline_success
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.status import STATUS_KEYS, TASK_KEYS, WATCH_KEYS, JobStatus, TaskStatus
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.original import api

JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"


def documented_keys() -> tuple[list[str], list[str]]:
    """The status keys and the task keys the README's "Python API" lists, in its order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"- a status \(what the callback gets.*?\);\n", readme, re.S)
    assert found, "the README's Python API no longer lists the status keys"
    text = found.group(0)
    status_part, task_part = text.split("each task in `tasks` has")
    # The names before the keys are the API's (what gets or returns a status).
    named = {"monitor_job_with_updates", "monitor_pipeline_job", "run_pipeline_job", "status"}
    status_keys = [k for k in re.findall(r"`([a-z_]+)`", status_part) if k not in named]
    return status_keys, re.findall(r"`([a-z_]+)`", task_part)[:6]


def original_monitor(vertex: VertexStandIn, clock: FakeClock, **options: float) -> object:
    target = VertexTarget(TEST_PROJECT, "us-central1", vertex.url)
    return api.PipelineMonitor(
        target, clock=clock, sleep=clock.sleep, now=clock.now, out=io.StringIO(), **options
    )


def test_the_record_keys_are_the_documented_ones() -> None:
    status_keys, task_keys = documented_keys()
    assert status_keys == [*STATUS_KEYS, *WATCH_KEYS]
    assert task_keys == list(TASK_KEYS)
    # Every documented key is a field of the record, and every field a documented key.
    assert [f.name for f in dataclasses.fields(JobStatus)] == status_keys
    assert [f.name for f in dataclasses.fields(TaskStatus)] == task_keys


def test_a_status_read_from_a_job_resource_has_the_twelve_keys_in_order() -> None:
    job = {
        "name": JOB,
        "state": "PIPELINE_STATE_RUNNING",
        "create_time": "2026-01-01T00:00:00Z",
        "job_detail": {
            "task_details": [
                {"task_id": "1", "task_name": "rlhf-tuning", "state": "RUNNING"},
                {
                    "task_id": "2",
                    "parent_task_id": "1",
                    "task_name": "reward-model-trainer",
                    "state": "FAILED",
                    "error": {"message": "OOM"},
                },
            ]
        },
    }
    status = monitor.job_status(job)
    plain = status.as_dict()
    assert list(plain) == list(STATUS_KEYS)
    assert [list(task) for task in plain["tasks"]] == [list(TASK_KEYS)] * 2
    assert plain["failed_task"] == "reward-model-trainer" and plain["error"] == "OOM"
    assert JobStatus.from_dict(plain) == status


@pytest.mark.parametrize(
    ("facts", "added"),
    [
        ({}, ["console_url"]),
        ({"timed_out": True}, ["console_url", "timed_out"]),
        ({"api_error": "E: x", "timed_out": True}, ["console_url", "api_error", "timed_out"]),
        ({"unknown_state": True}, ["console_url", "unknown_state"]),
    ],
)
def test_the_watch_facts_are_keys_only_when_they_are_facts(
    facts: dict[str, object], added: list[str]
) -> None:
    read = dataclasses.replace(monitor.job_status({"name": JOB}), console_url="https://c")
    status = dataclasses.replace(read, **facts)  # type: ignore[arg-type]
    plain = status.as_dict()
    assert list(plain) == [*STATUS_KEYS, *added]
    assert JobStatus.from_dict(plain) == status


def test_as_dict_hands_out_fresh_containers() -> None:
    status = monitor.job_status({"name": JOB, "state": "PIPELINE_STATE_RUNNING"})
    plain = status.as_dict()
    plain["stages"]["validation"] = "changed by a user"
    plain["outputs"]["model_resource_name"] = "x"
    assert status.stages["validation"] == "pending" and status.outputs == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.state = "SUCCEEDED"  # type: ignore[misc]


def test_the_original_monitor_hands_dicts_to_its_callback_and_its_caller(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex_on_fake_clock.add_job(JOB, timeline_success(600.0))
    watch = original_monitor(vertex_on_fake_clock, clock)
    seen: list[object] = []
    last = watch.monitor_job_with_updates(JOB, callback=seen.append)  # type: ignore[attr-defined]
    assert type(last) is dict and all(type(s) is dict for s in seen) and seen
    assert list(last) == [*STATUS_KEYS, "console_url"]
    assert last["state"] == "SUCCEEDED" and last["progress"] == 100
    report = watch.generate_monitoring_report(last)  # type: ignore[attr-defined]
    assert report.startswith(f"Pipeline job {JOB}: SUCCEEDED (100%")
    # The library's own attributes read through.
    assert watch.api_calls >= len(seen)  # type: ignore[attr-defined]
    assert type(watch.get_status(JOB)) is dict  # type: ignore[attr-defined]


def test_the_original_monitor_says_timed_out_in_its_dict(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex_on_fake_clock.add_job(JOB, timeline_long_running())
    watch = original_monitor(vertex_on_fake_clock, clock)
    last = watch.monitor_job_with_updates(JOB, timeout=600)  # type: ignore[attr-defined]
    assert last["timed_out"] is True and last["state"] == "RUNNING"
    assert "unknown_state" not in last and "api_error" not in last


def test_the_original_monitor_says_unknown_state_in_its_dict(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex_on_fake_clock.add_job(JOB, [Step(0, 42, {}), Step(7200, "PIPELINE_STATE_SUCCEEDED")])
    watch = original_monitor(vertex_on_fake_clock, clock, unknown_limit=600)
    last = watch.monitor_job_with_updates(JOB)  # type: ignore[attr-defined]
    assert last["unknown_state"] is True and last["state"] == "UNKNOWN(42)"
    assert "timed_out" not in last


def test_a_report_of_a_dict_missing_a_key_every_status_has_is_a_key_error() -> None:
    plain = monitor.job_status({"name": JOB}).as_dict()
    del plain["state"]
    with pytest.raises(KeyError, match="state"):
        api.PipelineMonitor.generate_monitoring_report(plain)


@pytest.mark.parametrize("when", ["yesterday", "2026-13-40T99:00:00Z", "", None, 17, "\x1b[2J"])
def test_a_time_the_server_garbled_is_unknown_not_a_crash(when: object) -> None:
    from datetime import datetime, timezone

    from vertex_rlhf.cloud import monitor
    from vertex_rlhf.cloud.status import parse_time

    assert parse_time(when) is None
    job = {
        "name": "projects/p/locations/l/pipelineJobs/j",
        "state": "PIPELINE_STATE_RUNNING",
        "start_time": when,
        "job_detail": {
            "task_details": [{"task_name": "t", "state": "RUNNING", "start_time": when}]
        },
    }
    status = monitor.job_status(job, datetime(2026, 12, 6, tzinfo=timezone.utc))
    assert status.elapsed_seconds is None and status.tasks[0].seconds is None
    assert parse_time("2026-12-06T08:00:00Z") == datetime(2026, 12, 6, 8, tzinfo=timezone.utc)
