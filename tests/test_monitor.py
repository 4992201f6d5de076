"""Monitoring through the real GAPIC client against the stand-in, on a fake clock."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TEST_PROJECT, FakeClock, signalled_child
from tests.standins.vertex import (
    VertexStandIn,
    timeline_long_running,
    timeline_success,
    timeline_training_failure,
    timeline_validation_failure,
)
from vertex_rlhf import cli
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.status import JobStatus
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.errors import DataError, TrainingError
from vertex_rlhf.views import run_report

JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"
STATUS_KEYS = {"job_id", "state", "progress", "failed_task", "error"}


def watcher(
    vertex: VertexStandIn, clock: FakeClock, log: Path | None = None
) -> monitor.PipelineMonitor:
    target = VertexTarget(TEST_PROJECT, "us-central1", vertex.url)
    return monitor.PipelineMonitor(
        target, metrics_log=log, clock=clock, sleep=clock.sleep, now=clock.now, out=io.StringIO()
    )


def test_one_hour_run_polls_gently_and_reports_success(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_success(3600.0), labels={"pipeline": "rlhf-tuning"})
    seen: list[JobStatus] = []
    watch = watcher(vertex, clock, tmp_path / "metrics.jsonl")
    status = watch.monitor_job_with_updates("rlhf-tuning-dev-1", callback=seen.append)

    assert status.state == "SUCCEEDED" and status.progress == 100
    assert all(set(s.as_dict()) >= STATUS_KEYS for s in seen)
    assert [s.progress for s in seen] == sorted(s.progress for s in seen)
    assert seen[0].state == "PENDING"
    assert {s.stages["reward model"] for s in seen} >= {"pending", "running", "succeeded"}

    polls = [r["at"] for r in vertex.calls("GET")]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert min(gaps) >= 15.0 and max(gaps) <= 60.0  # never hammering, never silent long
    assert watch.api_calls == len(polls)
    print(f"\nAPI calls for a scripted one-hour run: {len(polls)}")
    assert 60 <= len(polls) <= 75

    report = run_report.report(status)
    assert report.startswith(f"Pipeline job {JOB}: SUCCEEDED (100%, 1h 00m)")
    assert (
        "reward-model-trainer" in report and "console: https://console.cloud.google.com" in report
    )
    assert monitor.final_error(status) is None


def test_metrics_log_records_changes_and_task_outputs(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    vertex_on_fake_clock.add_job(JOB, timeline_success(3600.0))
    log = tmp_path / "m.jsonl"
    watcher(vertex_on_fake_clock, clock, log).monitor_job_with_updates(JOB)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(set(r) == {"timestamp", "job_id", "stage", "metrics"} for r in records)
    assert all(r["job_id"] == JOB for r in records)
    steps = [
        r
        for r in records
        if r["metrics"].get("task") == "compute-steps" and r["metrics"]["state"] == "SUCCEEDED"
    ]
    assert steps[0]["stage"] == "validation"
    assert steps[0]["metrics"]["reward_model_train_steps"] == 1410
    trainer = [r for r in records if r["metrics"].get("task") == "reward-model-trainer"]
    assert [r["metrics"]["state"] for r in trainer] == ["RUNNING", "SUCCEEDED"]
    assert trainer[-1]["stage"] == "reward model"
    assert trainer[-1]["metrics"]["duration_seconds"] > 0
    pipeline = [r["metrics"] for r in records if r["stage"] == "pipeline"]
    assert pipeline[-1] == {"state": "SUCCEEDED", "progress": 100}


def test_survives_429_and_503_bursts_and_dropped_connections(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_success(600.0))
    vertex.fail_next(3, 429)
    vertex.fail_next(2, 503)
    vertex.fail_next(2, 0)  # connection closed without a response
    watch = watcher(vertex, clock)
    status = watch.monitor_job_with_updates(JOB)
    assert status.state == "SUCCEEDED"
    output = watch.out.getvalue()  # type: ignore[attr-defined]
    assert output.count("API error (TooManyRequests)") == 3
    assert output.count("API error (ServiceUnavailable)") == 2
    assert output.count("API error") == 7
    # the waits after consecutive errors back off: 15, 30, 60, 60, ...
    assert clock.sleeps[:4] == [15.0, 30.0, 60.0, 60.0]


def test_failed_run_names_the_failing_task_and_its_error(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    message = "The replica workerpool0-0 ran out of memory (OOM killed)."
    vertex_on_fake_clock.add_job(JOB, timeline_training_failure(message))
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(JOB)
    assert status.state == "FAILED"
    assert status.failed_task == "reward-model-trainer"  # the leaf, not its graph
    assert status.error == message
    report = run_report.report(status)
    assert "failed task: reward-model-trainer (reward model)" in report
    assert f"error: {message}" in report
    assert "stages: validation succeeded | reward model failed" in report
    error = monitor.final_error(status)
    assert isinstance(error, TrainingError) and error.exit_status == 14
    assert "lower training.prompt_sequence_length" in error.render()


def test_failed_validation_is_a_data_error(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    message = 'gs://b/pref.jsonl:17: choice: must be the integer 0 or 1, got string "1"'
    vertex_on_fake_clock.add_job(JOB, timeline_validation_failure(message))
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(JOB)
    assert (status.failed_task, status.failed_stage) == ("validate-dataset", "validation")
    error = monitor.final_error(status)
    assert isinstance(error, DataError) and message in error.render()


def test_cancelled_run(vertex_on_fake_clock: VertexStandIn, clock: FakeClock) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_long_running())
    target = VertexTarget(TEST_PROJECT, "us-central1", vertex.url)

    def cancel_once(status: JobStatus) -> None:
        if status.state == "RUNNING":
            monitor.cancel(target, JOB)

    status = watcher(vertex, clock).monitor_job_with_updates(JOB, callback=cancel_once)
    assert status.state == "CANCELLED"
    assert len(vertex.calls("POST", ":cancel")) == 1
    error = monitor.final_error(status)
    assert isinstance(error, TrainingError) and "ended CANCELLED" in error.message


def test_timeout_stops_watching_not_the_job(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex_on_fake_clock.add_job(JOB, timeline_long_running())
    status = watcher(vertex_on_fake_clock, clock).monitor_job_with_updates(JOB, timeout=600)
    assert status.timed_out and status.state == "RUNNING"
    assert 600 <= clock.t <= 660
    assert vertex_on_fake_clock.calls("POST") == []


def test_job_status_maps_nested_tasks_to_stages() -> None:
    job = {
        "name": JOB,
        "state": "PIPELINE_STATE_RUNNING",
        "job_detail": {
            "task_details": [
                {"task_id": "1", "task_name": "rlhf-tuning", "state": "RUNNING"},
                {
                    "task_id": "2",
                    "parent_task_id": "1",
                    "task_name": "rlhf-train-template",
                    "state": "RUNNING",
                },
                {
                    "task_id": "3",
                    "parent_task_id": "2",
                    "task_name": "reinforcement-learning-graph",
                    "state": "RUNNING",
                },
                {
                    "task_id": "4",
                    "parent_task_id": "3",
                    "task_name": "private-text-importer",
                    "state": "SUCCEEDED",
                },
                {
                    "task_id": "5",
                    "parent_task_id": "3",
                    "task_name": "reinforcer",
                    "state": "RUNNING",
                },
                {
                    "task_id": "6",
                    "parent_task_id": "2",
                    "task_name": "reward-model-graph",
                    "state": "SUCCEEDED",
                },
                {
                    "task_id": "7",
                    "parent_task_id": "1",
                    "task_name": "compute-steps",
                    "state": "SUCCEEDED",
                },
            ]
        },
    }
    status = monitor.job_status(job)
    stages = {t.name: t.stage for t in status.tasks}
    assert stages["private-text-importer"] == "reinforcement learning"
    assert stages["rlhf-train-template"] is None
    assert status.stages["reinforcement learning"] == "running"
    assert status.progress == 5 + 40 + 45 // 2


@pytest.mark.usefixtures("project_env")
def test_runs_and_cancel_commands(
    vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
    vertex.add_job(
        f"{parent}/rlhf-tuning-dev-a",
        timeline_long_running(),
        labels={"pipeline": "rlhf-tuning", "pipeline-version": "1-0-0", "environment": "dev"},
    )
    vertex.add_job(
        f"{parent}/other-pipeline-b", timeline_long_running(), labels={"pipeline": "something-else"}
    )
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"
    assert cli.main(["runs", "dev", endpoint]) == 0
    out = capsys.readouterr().out
    assert "rlhf-tuning-dev-a" in out and "RUNNING" in out and "1-0-0" in out
    assert "other-pipeline-b" not in out
    assert cli.main(["cancel", "rlhf-tuning-dev-a", "--env", "dev", endpoint]) == 0
    assert [c["path"] for c in vertex.calls("POST")] == [f"/v1/{parent}/rlhf-tuning-dev-a:cancel"]


@pytest.mark.usefixtures("project_env")
def test_bad_and_unknown_job_ids(vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"
    assert cli.main(["monitor", "Bad Job!", "--env", "dev", endpoint]) == 12
    assert "JOB='Bad Job!' is neither a job id" in capsys.readouterr().err
    fast = ["--poll-interval", "0.05"]
    assert cli.main(["monitor", "no-such-job", "--env", "dev", endpoint, *fast]) == 12
    assert "not found" in capsys.readouterr().err
    assert len(vertex.calls("GET")) == 3  # it asked, and believed a repeated 404


def test_ctrl_c_stops_watching_and_never_cancels(vertex: VertexStandIn, tmp_path: Path) -> None:
    vertex.add_job(JOB, timeline_long_running())
    environ = {**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT}
    args = [
        sys.executable,
        "-m",
        "vertex_rlhf",
        "monitor",
        JOB,
        "--env",
        "dev",
        f"vertex_ai.api_endpoint={vertex.url}",
        "--poll-interval",
        "0.2",
        "--metrics-log",
        str(tmp_path / "metrics.jsonl"),
    ]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with signalled_child(args, cwd=REPO, env=environ, **pipes) as process:
        deadline = time.monotonic() + 60
        while not vertex.calls("GET") and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Stopped watching; the job keeps running." in err
    assert "Resume with: make monitor JOB=rlhf-tuning-dev-1 ENV=dev" in err
    assert "Traceback" not in err
    assert vertex.calls("POST") == []  # never cancelled


@pytest.mark.usefixtures("project_env")
def test_cli_monitor_polls_at_least_once_a_minute(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-quiet"
    vertex_on_fake_clock.add_job(job, timeline_long_running(seconds=7200.0))

    class OnFakeTime(monitor.PipelineMonitor):
        """The CLI's monitor, as the CLI configures it, on the test's clock."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs, clock=clock, sleep=clock.sleep, now=clock.now)

    monkeypatch.setattr(monitor, "PipelineMonitor", OnFakeTime)
    status = cli.main(
        [
            "monitor",
            "rlhf-tuning-dev-quiet",
            "--env",
            "dev",
            f"vertex_ai.api_endpoint={vertex_on_fake_clock.url}",
            "--poll-interval",
            "5",
            "--timeout",
            "3600",
            "--metrics-log",
            str(tmp_path / "metrics.jsonl"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    assert "Stopped watching after 3600s" in capsys.readouterr().err
    # Nothing changes for an hour: the pauses grow from 5 s and stop at 60 s.
    assert clock.sleeps[0] == 5.0
    assert max(clock.sleeps) == 60.0
    assert len(vertex_on_fake_clock.calls("GET")) >= 3600 / 60
