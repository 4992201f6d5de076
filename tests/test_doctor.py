"""The doctor against the stand-ins: real google-auth, Resource Manager and Cloud Storage
clients; one test per failure it must report, each beside the passing case."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT
from tests.standins.auth import write_service_account_key
from tests.standins.google_apis import PROJECT_NUMBER, GoogleApisStandIn
from vertex_rlhf.cloud import calls, health
from vertex_rlhf.config.params import RLHFParams, load_params
from vertex_rlhf.errors import ConfigError

CALLER = f"rlhf-doctor@{TEST_PROJECT}.iam.gserviceaccount.com"
RUNNER = f"rlhf-runner@{TEST_PROJECT}.iam.gserviceaccount.com"
REGISTRY = f"https://us-central1-kfp.pkg.dev/{TEST_PROJECT}/rlhf-templates"
REPOSITORY = f"projects/{TEST_PROJECT}/locations/us-central1/repositories/rlhf-templates"
A100_QUOTA = "aiplatform.googleapis.com/restricted_image_training_nvidia_a100_80gb_gpus"
TPU_QUOTA = "aiplatform.googleapis.com/restricted_image_training_tpu_v3_pod_cores"


def write_key_file(path: Path, standin: GoogleApisStandIn) -> Path:
    """A real service-account key file (fresh RSA key) whose token_uri is the stand-in,
    which trusts the key's self-signed JWTs too."""
    public = write_service_account_key(path, CALLER, TEST_PROJECT, f"{standin.url}/token")
    standin.trust(CALLER, public)
    return path


@pytest.fixture
def apis(
    storage_emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[GoogleApisStandIn]:
    """The stand-in, a key file pointing at it, storage through it, a healthy project."""
    standin = GoogleApisStandIn(TEST_PROJECT).start()
    standin.storage_upstream = storage_emulator
    standin.add_service_account(RUNNER)
    standin.add_service_account(f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com")
    standin.repositories[REPOSITORY] = "KFP"
    standin.quota(A100_QUOTA, "us-central1", 8)
    standin.quota(TPU_QUOTA, "europe-west4", 64)
    key = write_key_file(tmp_path / "key.json", standin)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", standin.url)
    yield standin
    standin.stop()


def endpoints(standin: GoogleApisStandIn) -> health.Endpoints:
    return health.Endpoints(**{name: standin.url for name in health.Endpoints.__dataclass_fields__})


def make_bucket(emulator: str, location: str = "US-CENTRAL1") -> str:
    """Creates a fresh bucket in the emulator with the given location."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"rlhf-doctor-{uuid.uuid4().hex[:12]}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator
    try:
        client = storage.Client(project=TEST_PROJECT, credentials=AnonymousCredentials())
        bucket = client.create_bucket(name)
        bucket._patch_property("location", location)
        bucket.patch()
    finally:
        if previous is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
    return name


def list_objects(emulator: str, bucket: str) -> list[str]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    previous = os.environ["STORAGE_EMULATOR_HOST"]
    os.environ["STORAGE_EMULATOR_HOST"] = emulator
    try:
        client = storage.Client(project=TEST_PROJECT, credentials=AnonymousCredentials())
        return [blob.name for blob in client.list_blobs(bucket)]
    finally:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


def params_for(bucket: str, *extra: str) -> RLHFParams:
    return load_params(
        "dev",
        [
            f"vertex_ai.pipeline_root=gs://{bucket}/root",
            f"vertex_ai.service_account={RUNNER}",
            f"vertex_ai.template_registry={REGISTRY}",
            *extra,
        ],
        REPO / "params",
    )


def run(
    apis: GoogleApisStandIn, bucket: str, *extra: str, compiled: Path = REPO / "compiled"
) -> dict[str, health.CheckResult]:
    results = health.run_checks(params_for(bucket, *extra), compiled, endpoints(apis))
    return {r.name: r for r in results}


def failed(results: dict[str, health.CheckResult]) -> list[str]:
    return [name for name, r in results.items() if r.status == health.FAIL]


@pytest.fixture
def bucket(storage_emulator: str) -> str:
    return make_bucket(storage_emulator)


def test_a_healthy_environment_passes_every_check(apis: GoogleApisStandIn, bucket: str) -> None:
    results = run(apis, bucket)
    assert failed(results) == []
    assert results["credentials"].detail == f"found, for serviceAccount:{CALLER}"
    assert "number 123456789012" in results["project"].detail
    assert {"Vertex AI API", "Cloud Storage API", "Artifact Registry API"} <= set(results)
    for name in (
        "pipeline root bucket",
        "bucket location",
        "bucket writable",
        "service account",
        "act as service account",
        "registry repository",
        "model/accelerator/region",
        "accelerator quota",
        "installed kfp/GCPC",
    ):
        assert results[name].status == health.PASS, results[name]
    assert "a2-ultragpu-8g" in results["model/accelerator/region"].detail
    assert "=8" in results["accelerator quota"].detail
    assert health.exit_status(list(results.values())) == 0
    # The probe object was written and deleted again: nothing is left in the bucket.
    assert any(path.startswith(f"/upload/storage/v1/b/{bucket}") for _, path in apis.requests)
    assert any(m == "DELETE" and f"/b/{bucket}/o/root" in p for m, p in apis.requests)
    assert list_objects(apis.storage_upstream or "", bucket) == []


def test_no_credentials(
    apis: GoogleApisStandIn, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    results = run(apis, bucket)
    assert results["credentials"].status == health.FAIL
    assert "gcloud auth application-default login" in results["credentials"].fix
    assert results["pipeline root bucket"].status == health.SKIP
    assert health.exit_status(list(results.values())) == 11


def test_refused_credentials(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.refuse_tokens = True
    results = run(apis, bucket)
    assert results["credentials"].status == health.FAIL
    assert "refused" in results["credentials"].detail


def test_project_not_reachable(apis: GoogleApisStandIn, bucket: str) -> None:
    del apis.projects[TEST_PROJECT]
    results = run(apis, bucket)
    assert results["project"].status == health.FAIL
    assert "403" in results["project"].detail and TEST_PROJECT in results["project"].detail
    assert results["service account"].status == health.SKIP
    assert health.exit_status(list(results.values())) == 12


def test_project_not_active(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.projects[TEST_PROJECT] = "DELETE_REQUESTED"
    results = run(apis, bucket)
    assert results["project"].status == health.FAIL
    assert "DELETE_REQUESTED" in results["project"].detail


@pytest.mark.parametrize(
    ("service", "check"),
    [
        ("aiplatform.googleapis.com", "Vertex AI API"),
        ("storage.googleapis.com", "Cloud Storage API"),
        ("artifactregistry.googleapis.com", "Artifact Registry API"),
    ],
)
def test_api_disabled(apis: GoogleApisStandIn, bucket: str, service: str, check: str) -> None:
    apis.services[service] = "DISABLED"
    results = run(apis, bucket)
    assert failed(results) == [check]
    assert results[check].fix == f"gcloud services enable {service} --project={TEST_PROJECT}"


def test_bucket_missing(apis: GoogleApisStandIn) -> None:
    results = run(apis, "rlhf-doctor-no-such-bucket")
    assert failed(results) == ["pipeline root bucket"]
    assert "does not exist" in results["pipeline root bucket"].detail
    assert "--location=us-central1" in results["pipeline root bucket"].fix


@pytest.mark.parametrize(
    ("location", "region", "status"),
    [
        ("US-CENTRAL1", "us-central1", health.PASS),
        ("US", "us-central1", health.PASS),
        ("NAM4", "us-central1", health.PASS),
        ("EUROPE-WEST4", "us-central1", health.FAIL),
        ("EU", "us-central1", health.FAIL),
        ("US", "europe-west4", health.FAIL),
        ("EUR4", "europe-west4", health.PASS),
        ("ASIA1", "us-central1", health.FAIL),
    ],
)
def test_bucket_location_against_the_region(
    apis: GoogleApisStandIn, storage_emulator: str, location: str, region: str, status: str
) -> None:
    bucket = make_bucket(storage_emulator, location)
    extra = [f"vertex_ai.region={region}"]
    if region == "europe-west4":
        extra.append("training.accelerator_type=TPU")
    results = run(apis, bucket, *extra)
    assert results["bucket location"].status == status, results["bucket location"]
    if status == health.FAIL:
        assert f"--location={region}" in results["bucket location"].fix


def test_bucket_not_writable(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.read_only_buckets.add(bucket)
    results = run(apis, bucket)
    assert failed(results) == ["bucket writable"]
    assert "403" in results["bucket writable"].detail
    assert "roles/storage.objectAdmin" in results["bucket writable"].fix


def test_service_account_missing(apis: GoogleApisStandIn, bucket: str) -> None:
    del apis.service_accounts[RUNNER]
    results = run(apis, bucket)
    assert failed(results) == ["service account"]
    assert RUNNER in results["service account"].detail


def test_service_account_disabled(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.service_accounts[RUNNER]["disabled"] = True
    results = run(apis, bucket)
    assert failed(results) == ["service account"]
    assert "disabled" in results["service account"].detail


def test_caller_may_not_act_as_the_service_account(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.act_as.discard(RUNNER)
    results = run(apis, bucket)
    assert failed(results) == ["act as service account"]
    fix = results["act as service account"].fix
    assert f"--member=serviceAccount:{CALLER}" in fix and "roles/iam.serviceAccountUser" in fix
    assert health.exit_status(list(results.values())) == 11


def test_default_service_account_is_checked_when_none_is_set(
    apis: GoogleApisStandIn, bucket: str
) -> None:
    default = f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
    apis.act_as.discard(default)
    results = run(apis, bucket, "vertex_ai.service_account=null")
    assert results["service account"].detail == f"{default} exists (default)"
    assert failed(results) == ["act as service account"]


def test_registry_repository_missing(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.repositories.clear()
    results = run(apis, bucket)
    assert failed(results) == ["registry repository"]
    assert "--repository-format=KFP --location=us-central1" in results["registry repository"].fix


def test_registry_repository_of_another_format(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.repositories[REPOSITORY] = "DOCKER"
    results = run(apis, bucket)
    assert failed(results) == ["registry repository"]


def test_no_registry_is_not_a_failure(apis: GoogleApisStandIn, bucket: str) -> None:
    results = run(apis, bucket, "vertex_ai.template_registry=null")
    assert results["registry repository"].status == health.SKIP
    assert failed(results) == []


def test_unsupported_combination(apis: GoogleApisStandIn, bucket: str) -> None:
    params = params_for(bucket)
    params.training.large_model_reference = "t5-large"  # TPU only
    results = {r.name: r for r in health.run_checks(params, REPO / "compiled", endpoints(apis))}
    assert failed(results) == ["model/accelerator/region"]
    assert "t5-large can only be tuned on TPU" in results["model/accelerator/region"].detail
    assert "accelerator quota" not in results


def test_quota_too_small(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.quotas = []
    apis.quota(A100_QUOTA, "us-central1", 4)
    results = run(apis, bucket)
    assert failed(results) == ["accelerator quota"]
    assert "needs 8x NVIDIA_A100_80GB in us-central1" in results["accelerator quota"].detail
    assert health.exit_status(list(results.values())) == 14


def test_restricted_image_quota_is_the_one_that_counts(
    apis: GoogleApisStandIn, bucket: str
) -> None:
    apis.quotas = []
    apis.quota(
        "aiplatform.googleapis.com/custom_model_training_nvidia_a100_80gb_gpus", "us-central1", 0
    )
    apis.quota(
        "aiplatform.googleapis.com/custom_model_training_preemptible_nvidia_a100_80gb_gpus",
        "us-central1",
        0,
    )
    apis.quota(A100_QUOTA, "us-central1", 16)
    results = run(apis, bucket)
    assert results["accelerator quota"].status == health.PASS
    assert (
        "restricted-image-training-nvidia-a100-80gb-gpus=16" in results["accelerator quota"].detail
    )
    apis.quotas = []
    apis.quota(A100_QUOTA, "europe-west4", 16)  # none in us-central1: the default 0 applies
    assert failed(run(apis, bucket)) == ["accelerator quota"]


def test_tpu_quota_is_read_for_europe_west4(apis: GoogleApisStandIn, storage_emulator: str) -> None:
    bucket = make_bucket(storage_emulator, "EUROPE-WEST4")
    apis.quotas = []
    apis.quota(TPU_QUOTA, "europe-west4", 32)
    results = run(apis, bucket, "vertex_ai.region=europe-west4", "training.accelerator_type=TPU")
    assert failed(results) == ["accelerator quota"]
    assert "needs 64x TPU_V3 in europe-west4" in results["accelerator quota"].detail


def test_quota_that_cannot_be_read_is_a_warning(apis: GoogleApisStandIn, bucket: str) -> None:
    apis.quotas = None
    results = run(apis, bucket)
    assert results["accelerator quota"].status == health.WARN
    assert "cannot tell" in results["accelerator quota"].detail
    assert failed(results) == []


def test_sdk_versions_differ_from_the_compiled_template(
    apis: GoogleApisStandIn, bucket: str, compiled_copy: Path
) -> None:
    manifest = json.loads((compiled_copy / "manifest.json").read_text())
    manifest["templates"][manifest["current"]]["kfp"] = "2.0.0"
    (compiled_copy / "manifest.json").write_text(json.dumps(manifest))
    results = run(apis, bucket, compiled=compiled_copy)
    assert failed(results) == ["installed kfp/GCPC"]
    assert "template compiled with 2.0.0" in results["installed kfp/GCPC"].detail
    assert health.exit_status(list(results.values())) == 13


def test_no_compiled_template_fails_only_the_version_check(
    apis: GoogleApisStandIn, bucket: str, tmp_path: Path
) -> None:
    results = run(apis, bucket, compiled=tmp_path / "empty")
    assert failed(results) == ["installed kfp/GCPC"]
    assert "no compiled template" in results["installed kfp/GCPC"].detail
    assert results["accelerator quota"].status == health.PASS


def test_endpoints_refuse_anything_but_google_apis_or_loopback() -> None:
    assert health.Endpoints.from_env({"RLHF_IAM_ENDPOINT": "http://127.0.0.1:8080"}).iam == (
        "http://127.0.0.1:8080"
    )
    for bad in ("https://evil.example.com", "http://10.0.0.1:80", "https://x.googleapis.com/a"):
        with pytest.raises(ConfigError):
            health.Endpoints.from_env({"RLHF_IAM_ENDPOINT": bad})


def test_make_doctor_prints_a_line_per_check_and_exits_with_the_failure_code(
    apis: GoogleApisStandIn, bucket: str
) -> None:
    environ = {**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT}
    for name in health.Endpoints.__dataclass_fields__:
        environ[f"RLHF_{name.upper()}_ENDPOINT"] = apis.url
    command = [
        "make",
        "--no-print-directory",
        "doctor",
        "ENV=dev",
        f"OVERRIDES=vertex_ai.pipeline_root=gs://{bucket}/root vertex_ai.service_account={RUNNER}",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=environ, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("PASS")]
    assert len(lines) >= 10 and result.stdout.rstrip().endswith("healthy")
    apis.service_accounts.pop(RUNNER)
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=environ, timeout=300
    )
    assert result.returncode == 2  # make's status for a failed recipe
    assert "Error 12" in result.stderr  # rlhf doctor exited 12 (CONFIG_002); make exits 2
    assert f"FAIL  service account: {RUNNER} does not exist [CONFIG_002]" in result.stdout
    assert "Traceback" not in result.stderr


def test_an_unreachable_endpoint_is_a_network_failure_not_a_traceback(
    apis: GoogleApisStandIn, bucket: str
) -> None:
    closed = health.Endpoints(
        **{
            **{n: apis.url for n in health.Endpoints.__dataclass_fields__},
            "resource_manager": "http://127.0.0.1:9",
        }
    )
    with calls.within(2.0):
        checked = health.run_checks(params_for(bucket), REPO / "compiled", closed)
    results = {r.name: r for r in checked}
    assert results["project"].status == health.FAIL
    assert results["project"].code == "NETWORK_006"
    assert "the connection failed" in results["project"].detail
    assert results["service account"].status == health.SKIP
    assert health.exit_status(checked) == 16


def test_names_that_go_into_api_paths_are_checked_first(
    apis: GoogleApisStandIn, bucket: str
) -> None:
    params = params_for(bucket)
    params.vertex_ai.project_id = "rlhf-test-project/../../v1/x"
    params.vertex_ai.service_account = "a b@c"
    results = {r.name: r for r in health.run_checks(params, REPO / "compiled", endpoints(apis))}
    assert results["parameters"].status == health.FAIL
    assert "vertex_ai.project_id" in results["parameters"].detail
    assert "vertex_ai.service_account" in results["parameters"].detail
    assert results["project"].status == results["service account"].status == health.SKIP
    assert not any(path.startswith("/v3/") for _, path in apis.requests)
