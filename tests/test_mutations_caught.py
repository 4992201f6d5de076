"""Behaviour that deliberate one-line bugs once broke without any test failing (issue 13).

Each test names the bug it catches; README "Tests" lists how each was checked.
"""

from __future__ import annotations

import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CURRENT_VERSION, REPO, TEST_PROJECT, FakeClock, fresh_pipeline_root
from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import VertexStandIn, timeline_long_running
from vertex_rlhf import cli
from vertex_rlhf.cloud import monitor, registry, submission, vertex
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import PipelineError

KMS_KEY = "projects/rlhf-test-project/locations/us-central1/keyRings/rlhf/cryptoKeys/runs"
SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
NETWORK = "projects/123456789/global/networks/rlhf-vpc"


# ---- create attempts back off, and give up with an error (never a quiet return) ----


def fake_retry_time(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> list[float]:
    """google.api_core's retry loops sleep and read their deadlines on the fake clock.

    The only Google modules patched in this file: their ``time`` (sleep, monotonic) and
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


def request_for(standin: VertexStandIn, *extra: str) -> submission.SubmitRequest:
    params = load_params(
        "dev",
        [f"vertex_ai.api_endpoint={standin.url}", fresh_pipeline_root(), *extra],
        REPO / "params",
    )
    template = submission.local_template(REPO / "compiled")
    return submission.build_request(params, "dev", template, "abc123def456")


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_create_attempts_back_off_and_then_raise(
    vertex: VertexStandIn, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every create is refused with 503 (up to 60 of them: a bound if the backoff broke).
    vertex.fail_next(60, 503, "POST")
    request = request_for(vertex)
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


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_a_create_that_never_succeeds_raises_instead_of_returning(vertex: VertexStandIn) -> None:
    vertex.fail_next(1000, 503, "POST")
    request = request_for(vertex)
    with pytest.raises(PipelineError, match="did not complete after"):
        submission.submit(
            request,
            retry=_fast(1.0),
            read_retry=_fast(1.0),
        )


def _fast(timeout: float) -> Any:
    return vertex.transient_retry(0.01, 0.05, timeout)


# ---- the CLI's monitor never waits more than a minute between polls ----


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


# ---- the full create request: CMEK, service account, network, labels, parameters ----


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_the_create_request_is_exactly_what_we_mean(vertex: VertexStandIn) -> None:
    request = request_for(
        vertex,
        f"training.encryption_spec_key_name={KMS_KEY}",
        f"vertex_ai.service_account={SERVICE_ACCOUNT}",
        f"vertex_ai.network={NETWORK}",
        "training.reward_model_train_steps=2000",
        "vertex_ai.labels.team=ml",
    )
    submission.submit(request, retry=_fast(20.0), read_retry=_fast(20.0))
    [create] = vertex.calls("POST")
    assert create["query"]["pipelineJobId"] == [request.job_id]
    body = dict(create["body"])
    spec = body.pop("pipelineSpec")
    compiled = yaml.safe_load(
        (REPO / "compiled" / f"rlhf-tuning-{request.template.version}.yaml").read_text()
    )
    assert spec == compiled
    values = body["runtimeConfig"].pop("parameterValues")
    assert body == {
        "displayName": "rlhf-dev",
        "labels": {
            "team": "ml",
            "app": "rlhf-tuning",
            "pipeline": "rlhf-tuning",
            "pipeline-version": request.template.version.replace(".", "-"),
            "git-commit": "abc123def456",
            "environment": "dev",
        },
        "runtimeConfig": {"gcsOutputDirectory": request.pipeline_root},
        "encryptionSpec": {"kmsKeyName": KMS_KEY},
        "serviceAccount": SERVICE_ACCOUNT,
        "network": NETWORK,
    }
    assert values["encryption_spec_key_name"] == KMS_KEY
    assert values["reward_model_train_steps"] == 2000
    assert values["large_model_reference"] == "llama-2-7b"
    assert values == {k: v for k, v in request.parameter_values.items() if v is not None}


# ---- the commit label says when the working tree had uncommitted changes ----


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_commit_label_marks_a_dirty_tree(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    git(tmp_path, "add", "params.yaml")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "--short=12", "HEAD")
    assert submission.git_commit(tmp_path) == head
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert submission.git_commit(tmp_path) == f"{head}-dirty"
    template = submission.TemplateRef(None, "rlhf-tuning", "1.0.0", "")
    labels = submission.run_labels({}, template, "dev", submission.git_commit(tmp_path))
    assert labels["git-commit"] == f"{head}-dirty"
    (tmp_path / "untracked.txt").write_text("not part of the run\n")
    git(tmp_path, "checkout", "--", "params.yaml")
    assert submission.git_commit(tmp_path) == head  # untracked files do not count


# ---- a pinned sha256 digest resolves to that version ----


def test_a_pinned_digest_resolves(registry_standin: RegistryStandIn, compiled_copy: Path) -> None:
    template = compiled_copy / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
    published, _ = registry.publish(registry_standin.url, template, CURRENT_VERSION)
    version = registry.resolve(registry_standin.url, "rlhf-tuning", published.digest)
    assert (version.host, version.package, version.digest) == (
        registry_standin.url,
        "rlhf-tuning",
        registry.file_digest(template),
    )
    downloaded = registry.download(version, compiled_copy / "downloads")
    assert downloaded.read_bytes() == template.read_bytes()
    other = "sha256:" + "0" * 64
    with pytest.raises(PipelineError, match="no such version"):
        registry.resolve(registry_standin.url, "rlhf-tuning", other)
