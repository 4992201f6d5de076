"""One job per intent under faults: the real aiplatform SDK against the Vertex stand-in."""

from __future__ import annotations

import random
import sys
import types
from typing import Any

import pytest

from tests.conftest import REPO, FakeClock, fresh_pipeline_root
from tests.standins.vertex import VertexStandIn
from vertex_rlhf.cloud import submission, vertex
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import PipelineError

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"


def make_request(standin: VertexStandIn, *extra: str) -> submission.SubmitRequest:
    params = load_params(
        "dev",
        [
            f"vertex_ai.api_endpoint={standin.url}",
            f"vertex_ai.service_account={SERVICE_ACCOUNT}",
            fresh_pipeline_root(),
            *extra,
        ],
        REPO / "params",
    )
    template = submission.local_template(REPO / "compiled")
    return submission.build_request(params, "dev", template, "abc123def456")


def fast(timeout: float = 20.0) -> Any:
    return vertex.transient_retry(0.01, 0.05, timeout)


pytestmark = pytest.mark.usefixtures("project_env", "storage_emulator")


def test_the_lookup_after_a_failed_create_is_retried(vertex: VertexStandIn) -> None:
    vertex.create_mode = "timeout-after-create"
    vertex.create_delay = 2.0
    vertex.fail_after_create(3, 503, "GET")
    vertex.fail_after_create(1, 0, "GET")  # and a dropped connection
    request = make_request(vertex)
    name = submission.submit(request, retry=fast(), read_retry=fast(), create_timeout=0.5)
    assert name == request.job_name
    assert list(vertex.jobs) == [request.job_name]
    assert len(vertex.calls("POST")) == 1  # found by id after the retried reads
    # the lookup before the create (not found), 4 failed reads, the one that found it
    assert len(vertex.calls("GET")) == 6


def test_labels_the_service_adds_do_not_block_adoption(vertex: VertexStandIn) -> None:
    assert vertex.service_labels  # like the real service
    vertex.create_mode = "503-after-create"
    request = make_request(vertex)
    name = submission.submit(request, retry=fast(), read_retry=fast())
    assert name == request.job_name and list(vertex.jobs) == [request.job_name]
    stored = vertex.jobs[request.job_name].resource["labels"]
    assert "vertex-ai-pipelines-run-billing-id" in stored


def test_when_in_doubt_the_error_names_the_job_and_says_it_may_exist(
    vertex: VertexStandIn,
) -> None:
    vertex.create_mode = "503-after-create"  # the job is made, the answer lost
    vertex.fail_after_create(10_000, 503, "GET")  # and it cannot be read back
    request = make_request(vertex)
    with pytest.raises(PipelineError) as caught:
        submission.submit(request, retry=fast(3.0), read_retry=fast(0.5))
    rendered = caught.value.render()
    assert request.job_name in rendered and "the job may exist" in rendered
    assert f"JOB_ID={request.job_id}" in rendered and "no job" not in rendered
    assert list(vertex.jobs) == [request.job_name]
    assert len(vertex.calls("POST")) == 1  # never created again while in doubt


def test_many_faulty_submits_make_one_job_each_and_answer_honestly(
    vertex: VertexStandIn,
) -> None:
    rng = random.Random(9)
    outcomes = {"created": 0, "in doubt": 0}
    for _ in range(12):
        vertex.create_mode = rng.choice(["normal", "timeout-after-create", "503-after-create"])
        vertex.create_delay = 1.0
        vertex.fail_next(rng.randint(0, 6), rng.choice([429, 503, 0]), "GET")
        request = make_request(vertex)
        try:
            name = submission.submit(
                request, retry=fast(4.0), read_retry=fast(1.0), create_timeout=0.5
            )
        except PipelineError as error:
            assert "the job may exist" in error.message and request.job_id in error.render()
            outcomes["in doubt"] += 1
        else:
            assert name == request.job_name
            outcomes["created"] += 1
        assert request.job_name in vertex.jobs  # a failure above never means "no job"
        with vertex.lock:
            vertex._faults.clear()
            vertex._after_create.clear()
    assert len(vertex.jobs) == 12 and outcomes["created"] >= 10


# ---- create attempts back off, and give up with an error (never a quiet return) ----


def fake_retry_time(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> list[float]:
    """google.api_core's retry loops sleep and read their deadlines on the fake clock.

    The only Google modules patched by this helper: their ``time`` (sleep, monotonic) and
    ``random`` (a seeded jitter), so a five-minute retry budget runs in milliseconds,
    the same way each run. Returns the pauses taken between create attempts (the loop
    whose target is ``submission.submit``'s ``attempt``); the SDK's own retries (its
    pipeline-root bucket check) sleep on the same clock but are not counted.
    """
    from google.api_core.retry import retry_base, retry_unary

    creates: list[float] = []

    def sleep(seconds: float) -> None:
        target = sys._getframe(1).f_locals.get("target")
        target = getattr(target, "func", target)  # functools.partial
        if getattr(target, "__qualname__", "") == "submit.<locals>.attempt":
            creates.append(seconds)
        clock.sleep(seconds)

    fake = types.SimpleNamespace(monotonic=clock, sleep=sleep, time=clock)
    monkeypatch.setattr(retry_unary, "time", fake)
    monkeypatch.setattr(retry_base, "time", fake)
    monkeypatch.setattr(retry_base, "random", random.Random(13))
    return creates


def test_create_attempts_back_off_and_then_raise_an_error(
    vertex: VertexStandIn, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every create is refused with 503 (up to 60 of them: a bound if the backoff broke).
    vertex.fail_next(60, 503, "POST")
    request = make_request(vertex)
    pauses = fake_retry_time(monkeypatch, clock)
    with pytest.raises(PipelineError) as caught:
        submission.submit(request)  # the library's own create and read retries
    rendered = caught.value.render()
    assert f"create {request.job_name} did not complete after" in rendered
    assert "the job may exist" in rendered and f"JOB_ID={request.job_id}" in rendered
    creates = len(vertex.calls("POST"))
    # Exponential backoff (2 s doubling to 30 s, with jitter) within 300 s: a handful of
    # attempts with a pause before each retry, never a burst of 60.
    assert 3 <= creates <= 40, creates
    assert len(pauses) == creates - 1
    assert all(pause > 0 for pause in pauses), pauses
    assert max(pauses) > 2.0 and sum(pauses) <= 300, pauses
    assert clock.t <= 450, clock.t
    assert vertex.jobs == {}


def test_a_create_that_never_succeeds_raises_instead_of_returning(
    vertex: VertexStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a retry the pipeline root's bucket exists, and the SDK asks Resource Manager (not
    # emulated here) for the project number to check the bucket's owner: answered with the
    # number the storage emulator gives its buckets, not a minute of retries off-machine.
    from google.cloud.aiplatform.utils import resource_manager_utils

    monkeypatch.setattr(resource_manager_utils, "get_project_number", lambda *a, **k: 1234)
    vertex.fail_next(1000, 503, "POST")
    request = make_request(vertex)
    with pytest.raises(PipelineError, match="did not complete after"):
        submission.submit(request, retry=fast(1.0), read_retry=fast(1.0))
