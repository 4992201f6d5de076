"""What following a run prints and hands over, held against goldens written by the code
before the job status became a typed record: the progress lines, every status passed to
the callback and the last one (as the original Python API's dicts), the report, the final
error and the metrics log, for runs that succeed, fail, are cancelled, time out, lose the
API, or end in a state the client does not know."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PROJECT, FakeClock
from tests.standins.vertex import (
    TASK_PARENTS,
    Step,
    VertexStandIn,
    timeline_long_running,
    timeline_success,
    timeline_training_failure,
    timeline_validation_failure,
)
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.status import JobStatus
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.original import api
from vertex_rlhf.views import run_report

GOLDEN = Path(__file__).parent / "golden" / "monitor"
JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"
NOTIFY = "vertex-pipelines-notification-email"


def _ended(tasks: dict[str, str | int], errors: dict[str, str]) -> list[Step]:
    return [
        Step(0, "PIPELINE_STATE_RUNNING", {"rlhf-tuning": "RUNNING"}),
        Step(
            600,
            "PIPELINE_STATE_FAILED",
            tasks,
            errors=errors,
            job_error="The DAG failed because some tasks failed.",
        ),
    ]


def _notification_only() -> list[Step]:
    done: dict[str, str | int] = {name: "SUCCEEDED" for name in TASK_PARENTS}
    done[NOTIFY] = "FAILED"
    return _ended(done, {NOTIFY: "invalid recipient <script>\u202e"})


SCENARIOS: dict[str, tuple[Callable[[], list[Step]], dict[str, Any]]] = {
    "success": (lambda: timeline_success(3600.0), {}),
    "training_failure": (
        lambda: timeline_training_failure("The replica ran out of memory (OOM killed)."),
        {},
    ),
    "validation_failure": (
        lambda: timeline_validation_failure('gs://b/p.jsonl:17: choice: got string "1"'),
        {},
    ),
    "notification_only": (_notification_only, {}),
    "timeout": (timeline_long_running, {"timeout": 600}),
    "unknown_state": (
        lambda: [
            Step(0, 42, {"rlhf-tuning": 77, "reward-model-trainer": "RUNNING"}),
            Step(7200, "PIPELINE_STATE_SUCCEEDED", {}),
        ],
        {"unknown_limit": 1800},
    ),
    "unknown_state_ended": (
        lambda: [Step(0, "PIPELINE_STATE_RUNNING"), Step(300, 12, {}, ended=True)],
        {},
    ),
    "outage_then_timeout": (timeline_long_running, {"timeout": 3600, "outage": True}),
}


def transcript(
    scenario: str, vertex: VertexStandIn, clock: FakeClock, tmp_path: Path, original: bool
) -> str:
    """Follows the scenario's job; everything a person or a callback would get, as text."""
    timeline, options = SCENARIOS[scenario]
    vertex.add_job(JOB, timeline())
    target = VertexTarget(TEST_PROJECT, "us-central1", vertex.url)
    log = tmp_path / "m.jsonl"
    out = io.StringIO()
    kind = api.PipelineMonitor if original else monitor.PipelineMonitor
    watch = kind(
        target,
        metrics_log=log,
        clock=clock,
        sleep=clock.sleep,
        now=clock.now,
        out=out,
        unknown_limit=options.get("unknown_limit", 1800.0),
    )
    seen: list[str] = []

    def callback(status: Any) -> None:
        # As the callback got it, when it got it.
        seen.append(json.dumps(_plain(status), sort_keys=True))
        if options.get("outage"):
            vertex.fail_next(500, 429)

    last = watch.monitor_job_with_updates(JOB, timeout=options.get("timeout"), callback=callback)
    error = monitor.final_error(_typed(last))
    parts = [
        "== lines",
        out.getvalue().rstrip("\n"),
        "== callbacks",
        *seen,
        "== last",
        json.dumps(_plain(last), sort_keys=True),
        "== report",
        run_report.report(_typed(last)),
        "== final error",
        "none" if error is None else f"{type(error).__name__} {error.render()}",
        "== metrics log",
        log.read_text(encoding="utf-8").rstrip("\n"),
    ]
    return "\n".join(parts).replace(vertex.url, "<VERTEX>") + "\n"


def _plain(status: JobStatus | dict[str, Any]) -> dict[str, Any]:
    """The original API's dict: as the library's record gives it, or as that API got it."""
    return status.as_dict() if isinstance(status, JobStatus) else status


def _typed(status: JobStatus | dict[str, Any]) -> JobStatus:
    return status if isinstance(status, JobStatus) else JobStatus.from_dict(status)


@pytest.mark.parametrize("original", [False, True], ids=["library", "original-api"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_following_a_run_gives_what_it_gave_before(
    scenario: str,
    original: bool,
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    got = transcript(scenario, vertex_on_fake_clock, clock, tmp_path, original)
    golden = GOLDEN / f"{scenario}.txt"
    if not golden.exists():
        golden.write_text(got, encoding="utf-8")
        pytest.fail(f"wrote {golden}: check it and run again")
    assert got == golden.read_text(encoding="utf-8")
