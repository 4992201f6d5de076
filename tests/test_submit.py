"""Submit: the real aiplatform SDK against the Vertex AI stand-in and the storage emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CURRENT_VERSION, REPO, TEST_PROJECT, fresh_pipeline_root
from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import VertexStandIn, scale, timeline_success, timeline_training_failure
from vertex_rlhf import cli
from vertex_rlhf.cloud import registry, submission, vertex
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import AuthError, PipelineError

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
JOB_ID = re.compile(r"^[a-z][-a-z0-9]{0,127}$")


def overrides(vertex: VertexStandIn, *extra: str) -> list[str]:
    return [
        f"vertex_ai.api_endpoint={vertex.url}",
        f"vertex_ai.service_account={SERVICE_ACCOUNT}",
        fresh_pipeline_root(),
        *extra,
    ]


def make_request(
    vertex: VertexStandIn, *extra: str, job_id: str | None = None
) -> submission.SubmitRequest:
    params = load_params("dev", overrides(vertex, *extra), REPO / "params")
    template = submission.local_template(REPO / "compiled")
    return submission.build_request(params, "dev", template, "abc123def456", job_id)


def fast() -> Any:
    """The library's retry with short delays, for tests."""
    return vertex.transient_retry(0.01, 0.05, 20.0)


@pytest.mark.usefixtures("project_env")
def test_dry_run_prints_the_request_and_sends_nothing(
    vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["submit", "dev", "--dry-run", *overrides(vertex, "training.kl_coeff=0.3")])
    assert status == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert vertex.requests == []
    job_id = printed["create"].rsplit("pipelineJobId=", 1)[1]
    assert JOB_ID.match(job_id) and job_id.startswith("rlhf-tuning-dev-")
    assert printed["template"]["version"] == CURRENT_VERSION
    assert printed["template"]["digest"] == registry.file_digest(
        REPO / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
    )
    job = printed["pipelineJob"]
    assert job["runtimeConfig"]["parameterValues"]["kl_coeff"] == 0.3
    assert job["serviceAccount"] == SERVICE_ACCOUNT
    labels = job["labels"]
    assert labels["pipeline"] == "rlhf-tuning" and labels[
        "pipeline-version"
    ] == CURRENT_VERSION.replace(".", "-")
    assert labels["environment"] == "dev"
    assert labels["git-commit"] == submission.sanitize_label(submission.git_commit(REPO))


PROJECT_OVERRIDE = "vertex_ai.project_id=my-project"


def test_dry_run_works_on_a_fresh_clone_without_credentials(tmp_path: Path) -> None:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS")
    }
    environ["HOME"] = str(tmp_path)  # no application-default credentials file either
    result = subprocess.run(
        # The project must be named (no environment invents one); no credentials needed.
        [sys.executable, "-m", "vertex_rlhf", "submit", "dev", "--dry-run", PROJECT_OVERRIDE],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was sent" in result.stderr
    assert "pipelineJobId=rlhf-tuning-dev-" in result.stdout


@pytest.mark.usefixtures("project_env")
def test_submit_sends_exactly_the_resolved_request(
    vertex: VertexStandIn, storage_emulator: str
) -> None:
    request = make_request(vertex, "training.reward_model_train_steps=2000")
    name = submission.submit(request, retry=fast(), read_retry=fast())
    assert name == f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/{request.job_id}"
    [create] = vertex.calls("POST")
    assert create["path"] == f"/v1/projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
    assert create["query"]["pipelineJobId"] == [request.job_id]
    body = create["body"]
    described = submission.describe(request)["pipelineJob"]
    for key, value in described.items():
        assert body[key] == value, key
    assert body["runtimeConfig"]["parameterValues"]["reward_model_train_steps"] == 2000
    assert body["pipelineSpec"]["pipelineInfo"]["name"] == "rlhf-tuning"
    assert "templateUri" not in body  # a local template
    # the SDK made sure the pipeline-root bucket exists, in the emulator
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=TEST_PROJECT, credentials=AnonymousCredentials())
    bucket = request.pipeline_root.removeprefix("gs://").split("/")[0]
    assert client.lookup_bucket(bucket) is not None


def test_job_ids_are_unique_and_valid_within_one_second() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    ids = [submission.new_job_id("rlhf-tuning", "Prod_EU", now) for _ in range(200)]
    shape = re.compile(r"rlhf-tuning-prod-eu-20260102-030405-[0-9a-f]{20}")
    assert [i for i in ids if not shape.fullmatch(i)] == []
    # 80 random bits per id: two of 200 ids meet with probability 200**2 / 2**81 < 2e-20
    # (24 bits met about once in 800 runs of this test).
    assert len(set(ids)) == 200
    longest = submission.new_job_id("p" * 300, "e" * 30, now)
    assert JOB_ID.match(longest) and len(longest) == 100  # within 128


def test_labels_follow_vertex_rules() -> None:
    template = submission.TemplateRef(None, "RLHF.Tuning", "1.0.0+local", "")
    labels = submission.run_labels({"team": "ml"}, template, "Staging EU", "A" * 80)
    assert labels == {
        "team": "ml",
        "pipeline": "rlhf-tuning",
        "pipeline-version": "1-0-0-local",
        "git-commit": "a" * 63,
        "environment": "staging-eu",
    }


@pytest.mark.usefixtures("project_env", "storage_emulator")
@pytest.mark.parametrize("mode", ["timeout-after-create", "503-after-create"])
def test_a_failed_create_that_landed_makes_one_job(vertex: VertexStandIn, mode: str) -> None:
    vertex.create_mode = mode
    vertex.create_delay = 2.0
    request = make_request(vertex)
    name = submission.submit(request, create_timeout=0.5, retry=fast(), read_retry=fast())
    assert name == request.job_name
    assert list(vertex.jobs) == [request.job_name]
    assert len(vertex.calls("POST")) == 1  # found by id: not created again


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_transient_errors_before_create_are_retried(
    vertex: VertexStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Last resort: on a retry the bucket exists, and the SDK asks Resource Manager (not
    # emulated here) for the project number to check the bucket's owner. Answer with the
    # number the storage emulator gives its buckets.
    from google.cloud.aiplatform.utils import resource_manager_utils

    monkeypatch.setattr(resource_manager_utils, "get_project_number", lambda *a, **k: 1234)
    vertex.fail_next(2, 503, "POST")
    request = make_request(vertex)
    assert submission.submit(request, retry=fast(), read_retry=fast()) == request.job_name
    assert len(vertex.calls("POST")) == 3
    assert list(vertex.jobs) == [request.job_name]


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_already_exists_is_adopted_only_when_it_is_the_same_submit(
    vertex: VertexStandIn,
) -> None:
    first = make_request(vertex)
    submission.submit(first, retry=fast(), read_retry=fast())
    again = make_request(vertex, job_id=first.job_id)
    assert submission.submit(again, retry=fast(), read_retry=fast()) == first.job_name
    other = make_request(vertex, "training.kl_coeff=0.5", job_id=first.job_id)
    with pytest.raises(PipelineError, match="already exists with other labels or parameters"):
        submission.submit(other, retry=fast(), read_retry=fast())
    assert len(vertex.jobs) == 1


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_permission_denied_is_an_auth_error(vertex: VertexStandIn) -> None:
    vertex.fail_next(1, 403, "POST")
    with pytest.raises(AuthError, match="permission denied"):
        submission.submit(make_request(vertex), retry=fast(), read_retry=fast())
    assert vertex.jobs == {}


def publish_current(standin: RegistryStandIn) -> str:
    template = REPO / "compiled" / "rlhf-tuning-1.0.0.yaml"
    published, uploaded = registry.publish(standin.url, template, "1.0.0")
    assert uploaded
    return published.digest


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_registry_version_is_submitted_by_digest(
    vertex: VertexStandIn, registry_standin: RegistryStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = publish_current(registry_standin)
    registry_standin.requests.clear()
    status = cli.main(
        [
            "submit",
            "dev",
            "--version",
            "1.0.0",
            *overrides(vertex, f"vertex_ai.template_registry={registry_standin.url}"),
        ]
    )
    assert status == 0, capsys.readouterr().err
    [create] = vertex.calls("POST")
    assert create["body"]["templateUri"] == f"{registry_standin.url}/rlhf-tuning/{digest}"
    assert create["body"]["labels"]["pipeline-version"] == "1-0-0"
    assert ("GET", "/packages/rlhf-tuning/tags/1.0.0") in registry_standin.requests
    assert ("GET", f"/rlhf-tuning/{digest}") in registry_standin.requests
    assert ("GET", "/rlhf-tuning/1.0.0") not in registry_standin.requests  # never by tag


@pytest.mark.usefixtures("project_env")
def test_missing_registry_tag_lists_the_existing_ones(
    vertex: VertexStandIn, registry_standin: RegistryStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_current(registry_standin)
    status = cli.main(
        [
            "submit",
            "dev",
            "--version",
            "2.0.0",
            *overrides(vertex, f"vertex_ai.template_registry={registry_standin.url}"),
        ]
    )
    assert status == 13
    err = capsys.readouterr().err
    assert "no tag '2.0.0'; tags that exist: 1.0.0, latest" in err
    assert vertex.requests == []


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT, **env}
    return subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=120,
    )


def test_submit_and_wait_for_success_end_to_end(
    vertex: VertexStandIn, storage_emulator: str, tmp_path: Path
) -> None:
    vertex.next_timeline = scale(timeline_success(), 0.0002)
    log = tmp_path / "metrics.jsonl"
    result = run_cli(
        "submit",
        "dev",
        "--wait",
        "--poll-interval",
        "0.05",
        "--metrics-log",
        str(log),
        *overrides(vertex),
        STORAGE_EMULATOR_HOST=storage_emulator,
    )
    assert result.returncode == 0, result.stderr
    assert "SUCCEEDED (100%" in result.stdout
    assert "reward model succeeded | reinforcement learning succeeded" in result.stdout
    records = [yaml.safe_load(line) for line in log.read_text().splitlines()]
    assert records[-1]["metrics"] == {"state": "SUCCEEDED", "progress": 100}


def test_submit_and_wait_for_a_failure_exits_with_training_004(
    vertex: VertexStandIn, storage_emulator: str, tmp_path: Path
) -> None:
    vertex.next_timeline = scale(
        timeline_training_failure("The replica workerpool0-0 ran out of memory (OOM)."), 0.001
    )
    result = run_cli(
        "submit",
        "dev",
        "--wait",
        "--poll-interval",
        "0.05",
        "--metrics-log",
        str(tmp_path / "metrics.jsonl"),
        *overrides(vertex),
        STORAGE_EMULATOR_HOST=storage_emulator,
    )
    assert result.returncode == 14
    err: Any = result.stderr
    assert err.startswith("error[TRAINING_004]: projects/")
    assert (
        "ended FAILED at reward-model-trainer: The replica workerpool0-0 ran out of memory (OOM)."
        in err
    )
    assert "fix: the batch size is fixed at 64: lower training.prompt_sequence_length" in err
    assert "failed task: reward-model-trainer (reward model)" in result.stdout
    assert "Traceback" not in err


KMS_KEY = "projects/rlhf-test-project/locations/us-central1/keyRings/rlhf/cryptoKeys/runs"
NETWORK = "projects/123456789/global/networks/rlhf-vpc"


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_the_create_request_carries_cmek_account_network_labels_and_parameters_exactly(
    vertex: VertexStandIn,
) -> None:
    request = make_request(
        vertex,
        f"training.encryption_spec_key_name={KMS_KEY}",
        f"vertex_ai.network={NETWORK}",
        "training.reward_model_train_steps=2000",
        "vertex_ai.labels.team=ml",
    )
    submission.submit(request, retry=fast(), read_retry=fast())
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
