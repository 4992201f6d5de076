"""Every cloud command under network faults and hostile answers: a coded error, a `fix:`,
its own non-zero exit, no traceback, within its bounds.

The real clients (aiplatform's GAPIC client, kfp's RegistryClient, google-auth with a
service-account key, google-cloud-storage) talk to stand-ins on loopback. "The network is
down" is the suite's proxy guard: every non-loopback host goes through a closed loopback
port (tests/conftest.py).
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CURRENT_VERSION, REPO, TEST_PROJECT, fresh_pipeline_root
from tests.standins.auth import TokenStandIn, write_service_account_key
from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import VertexStandIn, timeline_long_running
from vertex_rlhf import cli
from vertex_rlhf.cloud import calls, health

JOB_ID = "rlhf-tuning-dev-1"
OTHER_ID = "rlhf-tuning-dev-2"
PARENT = f"projects/{TEST_PROJECT}/locations/us-central1"
AR_HOST = f"https://us-central1-kfp.pkg.dev/{TEST_PROJECT}/templates"
SERVICE_ACCOUNT = f"rlhf-runner@{TEST_PROJECT}.iam.gserviceaccount.com"
BOUND = 15.0  # seconds a command may take here (its --timeout is 3)
AUTH, NETWORK, PIPELINE = ("AUTH_001", 11), ("NETWORK_006", 16), ("PIPELINE_003", 13)


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


@dataclass
class World:
    """What a command runs against: endpoints, registry host, files."""

    vertex_endpoint: str | None  # None: the Google host (through the closed proxy)
    registry_host: str
    tmp: Path
    vertex: VertexStandIn
    registry: RegistryStandIn


def command(name: str, world: World) -> list[str]:
    """The command line of one cloud command in ``world``."""
    log = str(world.tmp / "metrics.jsonl")
    vertex = [f"vertex_ai.api_endpoint={world.vertex_endpoint}"] if world.vertex_endpoint else []
    registry = [f"vertex_ai.template_registry={world.registry_host}"]
    timeout = ["--timeout", "3"]
    compiled = world.tmp / "compiled"
    lines = {
        "doctor": ["doctor", "dev", *timeout],
        "submit": [
            "submit",
            "dev",
            *vertex,
            f"vertex_ai.service_account={SERVICE_ACCOUNT}",
            fresh_pipeline_root(),
        ],
        "monitor": [
            "monitor",
            JOB_ID,
            "--env",
            "dev",
            *vertex,
            *timeout,
            "--poll-interval",
            "0.2",
            "--metrics-log",
            log,
        ],
        "runs": ["runs", "dev", *vertex, *timeout],
        "cancel": ["cancel", JOB_ID, "--env", "dev", *vertex, *timeout],
        "metrics": ["metrics", JOB_ID, "--env", "dev", *vertex, *timeout, "--metrics-log", log],
        "compare": ["compare", JOB_ID, OTHER_ID, "--env", "dev", *vertex, *timeout],
        "compare --last": ["compare", "--last", "2", "--env", "dev", *vertex, *timeout],
        "versions": ["versions", "dev", *registry, *timeout],
        "publish": ["publish", "dev", "--compiled-dir", str(compiled), *registry, *timeout],
    }
    return lines[name]


COMMANDS = (
    "doctor",
    "submit",
    "monitor",
    "runs",
    "cancel",
    "metrics",
    "compare",
    "compare --last",
    "versions",
    "publish",
)


@pytest.fixture
def world(
    tmp_path: Path,
    vertex: VertexStandIn,
    registry_standin: RegistryStandIn,
    monkeypatch: pytest.MonkeyPatch,
    project_env: str,
    storage_emulator: str,
) -> Iterator[World]:
    shutil.copytree(REPO / "compiled", tmp_path / "compiled")
    for job_id in (JOB_ID, OTHER_ID):
        vertex.add_job(
            f"{PARENT}/pipelineJobs/{job_id}",
            timeline_long_running(),
            labels={"pipeline": "rlhf-tuning", "environment": "dev"},
        )
    template = REPO / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
    registry_standin.upload(template.read_bytes(), [CURRENT_VERSION, "latest"])
    # A host that stays unreachable is retried for a second here, not 20.
    monkeypatch.setattr(calls, "UNREACHABLE_SECONDS", 1.0)
    yield World(vertex.url, registry_standin.url, tmp_path, vertex, registry_standin)


def use_key(monkeypatch: pytest.MonkeyPatch, tmp: Path, token_uri: str) -> None:
    key = tmp / "key.json"
    write_service_account_key(key, SERVICE_ACCOUNT, TEST_PROJECT, token_uri)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))


def doctor_endpoints(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name in health.Endpoints.__dataclass_fields__:
        monkeypatch.setenv(f"RLHF_{name.upper()}_ENDPOINT", url)


@pytest.fixture
def token_standin() -> Iterator[TokenStandIn]:
    standin = TokenStandIn().start()
    yield standin
    standin.stop()


# Faults: each arranges the world, and names the code every command must end in.
Fault = Callable[[World, pytest.MonkeyPatch, TokenStandIn], None]


def token_refused(world: World, monkeypatch: pytest.MonkeyPatch, token: TokenStandIn) -> None:
    token.refuse = True
    use_key(monkeypatch, world.tmp, f"{token.url}/token")
    world.vertex_endpoint, world.registry_host = None, AR_HOST


def token_unreachable(world: World, monkeypatch: pytest.MonkeyPatch, _: TokenStandIn) -> None:
    use_key(monkeypatch, world.tmp, f"http://127.0.0.1:{closed_port()}/token")
    world.vertex_endpoint, world.registry_host = None, AR_HOST


def connection_refused(world: World, monkeypatch: pytest.MonkeyPatch, token: TokenStandIn) -> None:
    use_key(monkeypatch, world.tmp, f"{token.url}/token")
    closed = f"http://127.0.0.1:{closed_port()}"
    doctor_endpoints(monkeypatch, closed)
    world.vertex_endpoint, world.registry_host = closed, closed


def proxy_refuses(world: World, monkeypatch: pytest.MonkeyPatch, token: TokenStandIn) -> None:
    use_key(monkeypatch, world.tmp, f"{token.url}/token")
    world.vertex_endpoint, world.registry_host = None, AR_HOST


FAULTS: dict[str, tuple[Fault, tuple[str, int]]] = {
    "token endpoint refuses": (token_refused, AUTH),
    "token endpoint unreachable": (token_unreachable, NETWORK),
    "connection refused": (connection_refused, NETWORK),
    "proxy refuses": (proxy_refuses, NETWORK),
}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, float]:
    started = time.monotonic()
    status = cli.main(args)
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    return status, out, err, took


def assert_coded(
    name: str, status: int, out: str, err: str, took: float, expected: tuple[str, int]
) -> None:
    code, exit_status = expected
    assert status == exit_status, out + err
    assert "Traceback" not in out + err
    if name == "doctor":  # one line per check; the first failure's code is the exit status
        assert f"[{code}]" in out and "fix:" in out, out
    else:
        assert f"error[{code}]" in err and "fix:" in err, err
    assert took < BOUND


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", COMMANDS)
def test_every_cloud_command_ends_coded_when_the_network_or_token_fails(
    name: str,
    fault: str,
    world: World,
    token_standin: TokenStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arrange, expected = FAULTS[fault]
    arrange(world, monkeypatch, token_standin)
    status, out, err, took = run(command(name, world), capsys)
    assert_coded(name, status, out, err, took, expected)
    if fault == "token endpoint unreachable":
        assert "refused" not in (out + err).split("(")[0]  # not "credentials refused"


# Hostile Vertex answers, and the commands that read them.
VERTEX_ANSWERS = {
    "truncated": ("monitor", "runs", "metrics", "compare", "compare --last", "submit"),
    "wrong-types": ("monitor", "runs", "metrics", "compare", "compare --last", "submit"),
    "other-job": ("monitor", "metrics", "compare", "submit"),
    "repeat-page-token": ("runs", "compare --last"),
    "endless-pages": ("runs", "compare --last"),
    "nameless": ("runs", "compare --last"),
}


@pytest.mark.parametrize(
    ("mode", "name"), [(m, c) for m, names in VERTEX_ANSWERS.items() for c in names]
)
def test_a_malformed_vertex_answer_is_refused_naming_the_call(
    mode: str, name: str, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.vertex.hostile = mode
    status, out, err, took = run(command(name, world), capsys)
    assert_coded(name, status, out, err, took, PIPELINE)
    assert "malformed" in err or "another job" in err
    assert len(world.vertex.requests) <= 2 * calls.MAX_PAGES + 5
    if mode == "other-job":
        assert (
            "someone-elses-job" not in (world.tmp / "metrics.jsonl").read_text(encoding="utf-8")
            if (world.tmp / "metrics.jsonl").exists()
            else True
        )


REGISTRY_ANSWERS = {
    "truncated": ("versions", "publish"),
    "tag-without-version": ("publish",),
    "tag-not-a-digest": ("versions", "publish"),
    "nameless": ("versions",),
    "wrong-types": ("versions",),
}


@pytest.mark.parametrize(
    ("mode", "name"), [(m, c) for m, names in REGISTRY_ANSWERS.items() for c in names]
)
def test_a_malformed_registry_answer_is_refused_naming_the_call(
    mode: str, name: str, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.registry.hostile = mode
    status, out, err, took = run(command(name, world), capsys)
    assert_coded(name, status, out, err, took, PIPELINE)
    assert "malformed" in err and world.registry.url in err
    if name == "publish":
        manifest = (world.tmp / "compiled" / "manifest.json").read_text(encoding="utf-8")
        assert manifest == (REPO / "compiled" / "manifest.json").read_text(encoding="utf-8")


def test_a_job_listed_twice_is_listed_and_compared_once(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.vertex.hostile = "duplicates"
    status, out, err, _ = run(command("runs", world), capsys)
    assert status == 0, err
    assert out.count(JOB_ID) == 1 and out.count(OTHER_ID) == 1
    status, out, err, _ = run(command("compare --last", world), capsys)
    assert status == 0, err
    [ids] = [line.split()[2:] for line in out.splitlines() if line.startswith("job id")]
    assert sorted(ids) == [JOB_ID, OTHER_ID]
    status, out, err, _ = run(["compare", JOB_ID, *command("compare", world)[1:]], capsys)
    assert status == 0, err
    [ids] = [line.split()[2:] for line in out.splitlines() if line.startswith("job id")]
    assert ids == [JOB_ID, OTHER_ID]


def test_submit_with_the_network_down_ends_coded_in_one_screen_within_its_bound(
    tmp_path: Path, token_standin: TokenStandIn
) -> None:
    """A fresh process, as a user runs it: real-looking credentials, every host behind a
    closed proxy. One error and its fix, no warning per retry, nothing created."""
    import os
    import subprocess
    import sys

    key = token_standin.write_key(tmp_path / "key.json", TEST_PROJECT)
    env = {
        **os.environ,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
    }
    env.pop("STORAGE_EMULATOR_HOST", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", "submit", "dev", fresh_pipeline_root()],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert done.returncode == 16, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error[NETWORK_006]: look up ") and "nothing was created" in lines[0]
    assert lines[1].startswith("  fix: ") and len(lines) == 2
    assert took < calls.UNREACHABLE_SECONDS + 30
