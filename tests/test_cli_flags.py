"""Bad flags are coded errors (CONFIG_002) before anything is sent or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT
from tests.standins.vertex import VertexStandIn, timeline_long_running
from vertex_rlhf import cli

JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status = cli.main(list(argv))
    err = capsys.readouterr().err
    assert status == 12, err
    assert err.startswith("error[CONFIG_002]: ") and "Traceback" not in err
    return err


@pytest.fixture(autouse=True)
def in_a_scratch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where a wrongly accepted flag can write nothing into the checkout (runs/)."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("params", "compiled"):
        (work / name).symlink_to(REPO / name)
    monkeypatch.chdir(work)


@pytest.fixture
def endpoint(vertex: VertexStandIn) -> str:
    vertex.add_job(JOB, timeline_long_running())
    return f"vertex_ai.api_endpoint={vertex.url}"


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    "flags",
    [
        ["--poll-interval", "-1"],
        ["--poll-interval", "nan"],
        ["--poll-interval", "0"],
        ["--poll-interval", "inf"],
        ["--timeout", "-5"],
        ["--timeout", "nan"],
        ["--timeout", "0"],
    ],
)
def test_bad_intervals_and_timeouts(
    vertex: VertexStandIn, endpoint: str, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    err = refused(capsys, "monitor", JOB, "--env", "dev", endpoint, *flags)
    assert flags[0] in err and "above 0" in err
    refused(capsys, "submit", "dev", "--wait", endpoint, *flags)
    assert vertex.requests == []


@pytest.mark.usefixtures("project_env")
def test_metrics_log_that_cannot_be_a_file(
    vertex: VertexStandIn, endpoint: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for log, why in [(tmp_path, "is a directory"), (a_file / "m.jsonl", "which is a file")]:
        err = refused(capsys, "monitor", JOB, "--env", "dev", endpoint, "--metrics-log", str(log))
        assert "--metrics-log" in err and why in err
    assert vertex.requests == []
    assert a_file.read_text() == "x"


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("limit", ["-1", "0"])
def test_runs_limit(
    vertex: VertexStandIn, endpoint: str, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    assert "--limit" in refused(capsys, "runs", "dev", endpoint, "--limit", limit)
    assert vertex.requests == []


def test_compiled_dir_that_cannot_be_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    err = refused(capsys, "compile", "--compiled-dir", str(a_file / "compiled"))
    assert "--compiled-dir" in err and "which is a file" in err
    assert "is a file" in refused(capsys, "compile", "--compiled-dir", str(a_file))


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    "version", ["", "../x", "2.0.0/../../y", "sha256:abc", "sha256:" + "A" * 64, "1" * 129, ".."]
)
def test_bad_versions(
    vertex: VertexStandIn, endpoint: str, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    err = refused(capsys, "submit", "dev", "--dry-run", endpoint, "--version", version)
    assert f"--version: version {version!r} is not a tag" in err
    assert vertex.requests == []


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("job_id", ["", "Bad_ID", "1234", "a" * 129, "x/../y", "-x"])
def test_job_ids_the_sdk_would_refuse_fail_in_dry_run(
    vertex: VertexStandIn, endpoint: str, capsys: pytest.CaptureFixture[str], job_id: str
) -> None:
    err = refused(capsys, "submit", "dev", "--dry-run", endpoint, f"--job-id={job_id}")
    assert f"--job-id: job id {job_id!r} cannot name a new" in err
    assert vertex.requests == []


@pytest.mark.usefixtures("project_env")
def test_submit_wait_checks_the_default_log_before_sending(
    vertex: VertexStandIn,
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("runs").write_text("not a directory")
    err = refused(capsys, "submit", "dev", "--wait", endpoint)
    assert "--metrics-log 'runs/JOB_ID.jsonl' is under 'runs', which is a file" in err
    assert vertex.requests == []
