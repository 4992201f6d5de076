"""The SDK's own logged tracebacks stay out of a successful submit's output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, TEST_PROJECT, fresh_pipeline_root
from tests.standins.storage import DenyingStorage
from tests.standins.vertex import VertexStandIn

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"


@pytest.fixture
def denying_storage() -> Iterator[DenyingStorage]:
    standin = DenyingStorage().start()
    yield standin
    standin.stop()


def submit(
    vertex: VertexStandIn, storage: DenyingStorage, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vertex_rlhf",
            "submit",
            "dev",
            f"vertex_ai.api_endpoint={vertex.url}",
            f"vertex_ai.service_account={SERVICE_ACCOUNT}",
            fresh_pipeline_root(),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={
            **os.environ,
            "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
            "STORAGE_EMULATOR_HOST": storage.url,
            **env,
        },
        timeout=120,
    )


def test_a_logged_sdk_error_is_one_line_without_traceback(
    vertex: VertexStandIn, denying_storage: DenyingStorage
) -> None:
    result = submit(vertex, denying_storage)
    assert result.returncode == 0, result.stderr
    assert denying_storage.requests  # the SDK did check the bucket, and was refused
    assert len(vertex.jobs) == 1 and "Submitted projects/" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    [line] = [x for x in result.stderr.splitlines() if "GCS bucket" in x]
    assert line.startswith("ERROR Error when trying to get or create a GCS bucket")
    assert "Forbidden: 403" in line  # why, in one line


def test_debug_keeps_the_traceback(vertex: VertexStandIn, denying_storage: DenyingStorage) -> None:
    result = submit(vertex, denying_storage, LOG_LEVEL="DEBUG")
    assert result.returncode == 0, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
