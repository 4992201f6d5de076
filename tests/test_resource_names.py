"""Resource names are checked part by part before any client is built: a crafted job name
must not send the caller's token anywhere (real SDK, real service-account credentials)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT
from tests.standins.auth import Listener, TokenStandIn
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.vertex import VertexTarget, target_of
from vertex_rlhf.config import names
from vertex_rlhf.errors import ConfigError


@pytest.fixture
def listener() -> Iterator[Listener]:
    attacker = Listener().start()
    yield attacker
    attacker.stop()


@pytest.fixture
def adc(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a user with real application-default credentials."""
    tokens = TokenStandIn().start()
    key = tokens.write_key(tmp_path / "key.json", TEST_PROJECT)
    yield {
        **os.environ,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "HOME": str(tmp_path),
    }
    tokens.stop()


def run_cli(environ: dict[str, str], *args: str) -> tuple[int | None, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "vertex_rlhf", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=environ,
    )
    try:
        _, err = process.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return None, err
    return process.returncode, err


def crafted(address: str) -> list[str]:
    return [
        f"projects/p/locations/{address}#/pipelineJobs/x",
        f"projects/{TEST_PROJECT}/locations/{address}/pipelineJobs/x",
        f"projects/{address}#/locations/us-central1/pipelineJobs/x",
        f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/x@{address}",
    ]


@pytest.mark.parametrize("command", ["monitor", "cancel"])
def test_a_crafted_job_name_sends_nothing_anywhere(
    command: str, listener: Listener, adc: dict[str, str]
) -> None:
    for name in crafted(listener.address):
        extra = ["--timeout", "5"] if command == "monitor" else []
        status, err = run_cli(adc, command, name, "--env", "dev", *extra)
        assert status == 12, (name, err)
        assert err.startswith("error[CONFIG_002]: "), err
        assert f"job {name!r}" in err
        assert "Traceback" not in err
    assert listener.connections == 0 and listener.received == b""


def test_the_listener_would_hear_a_real_client(listener: Listener, adc: dict[str, str]) -> None:
    """Control: with the listener as the configured endpoint, the same client reaches it."""
    run_cli(
        adc,
        "monitor",
        "rlhf-tuning-dev-1",
        "--env",
        "dev",
        f"vertex_ai.api_endpoint=https://{listener.address}",
        "--timeout",
        "1",
        "--poll-interval",
        "0.2",
    )
    assert listener.connections > 0 and listener.received  # a TLS hello, at least


@pytest.mark.parametrize(
    "project, location",
    [
        ("p", "us-central1"),
        ("Project-X", "us-central1"),
        ("my-project", "127.0.0.1:9#"),
        ("my-project", "evil.example.com/"),
        ("my-project", "us-central1.evil.example.com"),
        ("my-project", "mars-west1"),
        ("my-project/../x", "us-central1"),
        ("0123", "us-central1"),
    ],
)
def test_targets_are_checked_when_made(project: str, location: str) -> None:
    with pytest.raises(ConfigError):
        VertexTarget(project, location)
    with pytest.raises(ConfigError):
        monitor.PipelineMonitor(VertexTarget(project, location))


def test_good_targets_and_names() -> None:
    assert VertexTarget("my-project", "europe-west4").parent.endswith("europe-west4")
    assert VertexTarget("123456789012", "us-central1").project == "123456789012"
    default = VertexTarget("my-project", "us-central1")
    name = "projects/other-project/locations/europe-west4/pipelineJobs/rlhf-tuning-dev-1"
    assert target_of(name, default) == VertexTarget("other-project", "europe-west4")
    assert target_of("456", default) is default  # a number the service assigned
    assert names.parse_job_name("projects/123/locations/us-central1/pipelineJobs/456") == (
        "123",
        "us-central1",
        "456",
    )


@pytest.mark.parametrize(
    "job",
    [
        "Bad Job!",
        "UPPER",
        "-leading-dash",
        "a" * 129,
        "projects/p/locations/us-central1/pipelineJobs/x/extra",
        "projects/my-project/locations/us-central1/pipelineJobs/x?alt=1",
        "projects/my-project/locations/us-central1/pipelineJobs/",
        "projects/my-project/zones/us-central1/pipelineJobs/x",
    ],
)
def test_bad_job_names(job: str) -> None:
    with pytest.raises(ConfigError):
        VertexTarget("my-project", "us-central1").job_name(job)


REFUSED_VERTEX_ENDPOINTS = [
    "evil.example",
    "https://evil.example",
    "https://evil.example:443",
    "evil.example:443",
    "https://googleapis.com.evil.example",
    "https://aiplatform.googleapis.com.evil.example",
    "https://127.0.0.1.evil.example",
    "http://localhost.evil.example:80",
    "http://us-central1-aiplatform.googleapis.com",  # plain http would carry the token
    "https://user@us-central1-aiplatform.googleapis.com",
    "https://us-central1-aiplatform.googleapis.com/path",
]
ALLOWED_VERTEX_ENDPOINTS = [
    "us-central1-aiplatform.googleapis.com",
    "https://us-central1-aiplatform.googleapis.com",
    "us-central1-aiplatform-psc1.p.googleapis.com:443",
    "http://127.0.0.1:8080",
    "https://127.0.0.1:9443",
    "http://localhost:8080",
]


@pytest.mark.parametrize("endpoint", REFUSED_VERTEX_ENDPOINTS)
def test_a_vertex_endpoint_off_google_and_off_this_machine_is_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VertexTarget(TEST_PROJECT, "us-central1", endpoint)
    assert repr(endpoint) in str(caught.value)  # named, whichever check refuses it


@pytest.mark.parametrize("endpoint", ALLOWED_VERTEX_ENDPOINTS)
def test_google_and_loopback_vertex_endpoints_are_taken(endpoint: str) -> None:
    assert VertexTarget(TEST_PROJECT, "us-central1", endpoint).api_endpoint == endpoint


@pytest.mark.parametrize(
    "command", [["runs", "dev"], ["monitor", "rlhf-tuning-dev-1", "--env", "dev"]]
)
def test_a_foreign_vertex_endpoint_gets_no_token(
    command: list[str], listener: Listener, adc: dict[str, str]
) -> None:
    """The listener stands for a foreign host: nothing, token included, may reach it."""
    host = listener.address.replace("127.0.0.1", "localhost.evil.example")
    status, err = run_cli(adc, *command, f"vertex_ai.api_endpoint=https://{host}", "--timeout", "5")
    assert status == 12, err
    assert err.startswith("error[CONFIG_002]: ") and "Traceback" not in err
    assert "vertex_ai.api_endpoint" in err
    assert listener.connections == 0
