"""The monitor under faults: the real GAPIC client against the Vertex stand-in."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT, FakeClock
from tests.standins.vertex import Step, VertexStandIn, timeline_long_running, timeline_success
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.status import JobStatus
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.errors import AuthError, ConfigError, NetworkError, PipelineError
from vertex_rlhf.views import run_report

JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"


def watcher(vertex: VertexStandIn, clock: FakeClock, **options: float) -> monitor.PipelineMonitor:
    target = VertexTarget(TEST_PROJECT, "us-central1", vertex.url)
    return monitor.PipelineMonitor(
        target, clock=clock, sleep=clock.sleep, now=clock.now, out=io.StringIO(), **options
    )


def output(watch: monitor.PipelineMonitor) -> str:
    return watch.out.getvalue()  # type: ignore[attr-defined]


def test_a_watch_that_never_read_the_job_ends_in_a_coded_error_within_its_timeout(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_long_running())
    vertex.fail_next(200, 503)
    with pytest.raises(NetworkError) as raised:
        watcher(vertex, clock).monitor_job_with_updates(JOB, timeout=300)
    assert "HTTP 503" in raised.value.message and "never read" in raised.value.message
    assert 300 <= clock.t <= 330
    assert len(vertex.calls("GET")) < 20


def test_timeout_bounds_the_watch_when_calls_start_failing(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_long_running())
    watch = watcher(vertex, clock)
    seen = []

    def outage(status: JobStatus) -> None:
        seen.append(status)
        vertex.fail_next(500, 429)

    status = watch.monitor_job_with_updates(JOB, timeout=3600, callback=outage)
    assert status.timed_out and status.state == "RUNNING"  # the last state read
    assert 3600 <= clock.t <= 3660 and len(seen) == 1


def test_hung_calls_are_timeouts_and_retried(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_success(600.0))
    vertex.hang_seconds = 1.0
    vertex.fail_next(2, -1)
    watch = watcher(vertex, clock, call_timeout=0.2)
    started = time.monotonic()
    assert watch.monitor_job_with_updates(JOB).state == "SUCCEEDED"
    assert output(watch).count("API error") == 2
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("status_code", [404, 403])
def test_a_single_404_or_403_is_retried(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, status_code: int
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_success(600.0))
    vertex.fail_next(2, status_code)
    watch = watcher(vertex, clock)
    assert watch.monitor_job_with_updates(JOB).state == "SUCCEEDED"
    assert output(watch).count("API error") == 2


@pytest.mark.parametrize(("status_code", "error"), [(404, ConfigError), (403, AuthError)])
def test_a_repeated_404_or_403_is_believed(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    status_code: int,
    error: type[Exception],
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, timeline_success(600.0))
    vertex.fail_next(3, status_code)
    with pytest.raises(error):
        watcher(vertex, clock).monitor_job_with_updates(JOB)
    assert len(vertex.calls("GET")) == 3


@pytest.mark.parametrize("state", [42, "PIPELINE_STATE_BRAND_NEW"])
def test_an_unknown_state_is_shown_and_bounded(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, state: int | str
) -> None:
    vertex = vertex_on_fake_clock
    timeline = [
        Step(0, state, {"rlhf-tuning": 77, "reward-model-trainer": "RUNNING"}),
        Step(7200, "PIPELINE_STATE_SUCCEEDED", {}),
    ]
    vertex.add_job(JOB, timeline)
    watch = watcher(vertex, clock, unknown_limit=1800)
    status = watch.monitor_job_with_updates(JOB)
    shown = "UNKNOWN(42)" if state == 42 else "UNSPECIFIED"
    assert status.state == shown and status.unknown_state
    assert 1800 <= clock.t <= 1900
    assert f"state {shown} is unknown to this client" in output(watch)
    assert "UNKNOWN(77)" in run_report.report(status)
    error = monitor.final_error(status)
    assert isinstance(error, PipelineError) and shown in error.message


def test_an_unknown_state_that_ended_ends_the_watch(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    vertex = vertex_on_fake_clock
    vertex.add_job(JOB, [Step(0, "PIPELINE_STATE_RUNNING"), Step(300, 12, {}, ended=True)])
    status = watcher(vertex, clock).monitor_job_with_updates(JOB)
    assert status.state == "UNKNOWN(12)" and status.ended
    assert clock.t < 400
    assert "ended in state UNKNOWN(12)" in str(monitor.final_error(status))


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vertex_rlhf", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
    )


def test_cli_outage_from_the_start_ends_coded_within_the_timeout(
    vertex: VertexStandIn, tmp_path: Path
) -> None:
    vertex.add_job(JOB, timeline_long_running())
    vertex.fail_next(100_000, 503)
    process = cli(
        "monitor",
        JOB,
        "--env",
        "dev",
        f"vertex_ai.api_endpoint={vertex.url}",
        "--timeout",
        "2",
        "--poll-interval",
        "0.2",
        "--metrics-log",
        str(tmp_path / "m.jsonl"),
    )
    started = time.monotonic()
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 16, err
    assert "error[NETWORK_006]" in err and "never read" in err and "fix:" in err
    assert "Traceback" not in err + out
    assert "API error (ServiceUnavailable)" in out
    assert time.monotonic() - started < 20


def test_cli_shows_an_integer_state_without_a_traceback(
    vertex: VertexStandIn, tmp_path: Path
) -> None:
    vertex.add_job(JOB, [Step(0, 42, {"reward-model-trainer": 77})])
    process = cli(
        "monitor",
        JOB,
        "--env",
        "dev",
        f"vertex_ai.api_endpoint={vertex.url}",
        "--timeout",
        "1",
        "--poll-interval",
        "0.2",
        "--metrics-log",
        str(tmp_path / "m.jsonl"),
    )
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "UNKNOWN(42)" in out and "Traceback" not in err + out
    assert "Unrecognized" not in err  # proto-plus's warning: the status says it better
