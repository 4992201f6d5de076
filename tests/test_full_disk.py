"""A full disk while writing any output is a coded error naming it, with nothing left over.

The real CLI runs as a subprocess under a file size limit (``RLIMIT_FSIZE``: the write
that crosses it fails with EFBIG, as one on a full disk fails with ENOSPC), sized so that
exactly the output under test cannot be written. Each writer leaves its target as it was,
no temporary beside it, and a metrics log that ends with a whole line.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_PROJECT
from tests.standins import training
from tests.standins.vertex import VertexStandIn
from vertex_rlhf.data import writes
from vertex_rlhf.errors import DataError, PipelineError

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"


def rlhf(args: list[str], limit: int | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m vertex_rlhf ARGS`` with files limited to ``limit`` bytes."""

    def limited() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        preexec_fn=limited,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        timeout=300,
    )


def leftovers(folder: Path) -> list[str]:
    """Temporaries, partial files and locks under ``folder``."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if ".tmp" in p.name or p.name.endswith((".partial", ".lock"))
    )


def rows(n: int, bad_every: int = 0, width: int = 8) -> str:
    lines = []
    for i in range(n):
        if bad_every and i % bad_every == 0:
            lines.append(json.dumps({"prompt": f"p{i}", "note": "x" * 400}))
        else:
            pad = "y" * width
            lines.append(json.dumps({"prompt": f"p{i}{pad}", "chosen": "c", "rejected": "r"}))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ConvertCase:
    """A conversion whose output ``full`` is the largest: a limit below it fails only it."""

    full: str
    rows: str
    extra: tuple[str, ...]


CONVERT_CASES = {
    "train": ConvertCase("train.jsonl", rows(3000), ()),
    "eval": ConvertCase(
        "eval.jsonl", rows(3000), ("--eval-out", "eval.jsonl", "--eval-fraction", "0.9")
    ),
    "rejects": ConvertCase(
        "rejects.jsonl", rows(600, bad_every=2), ("--skip-invalid", "--rejects", "rejects.jsonl")
    ),
}


@pytest.mark.parametrize("full", sorted(CONVERT_CASES))
def test_convert_data_names_the_output_that_does_not_fit(tmp_path: Path, full: str) -> None:
    case = CONVERT_CASES[full]
    (tmp_path / "in.jsonl").write_text(case.rows)
    args = ["convert-data", "in.jsonl", "train.jsonl", "--kind", "preference", *case.extra]
    done = rlhf(args, limit=40_000, cwd=tmp_path)
    assert done.returncode == 15, done.stderr
    assert f"error[DATA_005]: {case.full}: the file would exceed the largest file" in done.stderr
    assert "fix: " in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no output, no temporary
    # With room, the same conversion works: the limit was what failed it.
    assert rlhf(args, limit=None, cwd=tmp_path).returncode == 0


def test_compile_into_a_full_disk_leaves_compiled_as_it_was(tmp_path: Path) -> None:
    compiled = tmp_path / "compiled"
    compiled.mkdir()
    done = rlhf(["compile", "--compiled-dir", str(compiled)], limit=20_000, cwd=tmp_path)
    assert done.returncode == 13, done.stderr
    assert "error[PIPELINE_003]: " in done.stderr
    assert "the file would exceed the largest file" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(compiled.iterdir()) == [] and leftovers(tmp_path) == []


@pytest.fixture
def metrics_run(
    storage_emulator: str, vertex: VertexStandIn, tmp_path: Path
) -> Callable[[int | None], subprocess.CompletedProcess[str]]:
    """A run with 60 steps of metrics; returns a function that runs `rlhf metrics` on it."""
    job = f"m-{uuid.uuid4().hex[:8]}"
    timeline, uris = training.run_timeline(0.0036, f"rlhf-disk-{uuid.uuid4().hex[:10]}", job)
    vertex.add_job(f"{PARENT}/{job}", timeline)
    loss = [(step, 0.7 - 0.01 * step) for step in range(40)]
    training.publish_events(tmp_path / "rm", uris["reward-model-trainer"], {"loss": loss})
    reward = [(step, 0.1 * step) for step in range(20)]
    training.publish_events(tmp_path / "rl", uris["reinforcer"], {"reward": reward})
    args = ["metrics", job, "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}"]
    args += ["--metrics-log", "runs/m.jsonl", "--png", "runs/m.png"]
    return lambda limit: rlhf(args, limit, tmp_path)


def whole_lines(log: Path) -> list[dict[str, object]]:
    data = log.read_bytes()
    assert data.endswith(b"\n"), "the log ends mid-line"
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.usefixtures("project_env")
def test_a_full_disk_never_leaves_the_metrics_log_mid_line(
    metrics_run: Callable[[int | None], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    log = tmp_path / "runs" / "m.jsonl"
    log.parent.mkdir()
    earlier = json.dumps({"job_id": "x", "stage": "pipeline", "metrics": {"state": "RUNNING"}})
    log.write_text(earlier + "\n")
    # Room for a few records only: the append crosses the limit part-way.
    done = metrics_run(log.stat().st_size + 700)
    assert done.returncode == 15, done.stderr
    assert "error[DATA_005]: runs/m.jsonl: the file would exceed" in done.stderr
    assert "Traceback" not in done.stderr
    assert whole_lines(log) == [json.loads(earlier)]  # as it was before the run
    assert leftovers(tmp_path) == [] and not (tmp_path / "runs" / "m.png").exists()
    # The next run, with room, logs every point once.
    assert metrics_run(None).returncode == 0
    assert len(whole_lines(log)) == 1 + 60


@pytest.mark.usefixtures("project_env")
def test_a_full_disk_while_drawing_keeps_the_previous_png(
    metrics_run: Callable[[int | None], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    assert metrics_run(None).returncode == 0
    png = tmp_path / "runs" / "m.png"
    before = png.read_bytes()
    assert len(before) > 8000
    done = metrics_run(8000)  # nothing new to log; the chart does not fit
    assert done.returncode == 15, done.stderr
    assert "error[DATA_005]: runs/m.png: the file would exceed" in done.stderr
    assert "Traceback" not in done.stderr
    assert png.read_bytes() == before and leftovers(tmp_path) == []


@pytest.mark.usefixtures("project_env")
def test_a_log_left_mid_line_by_a_killed_writer_is_repaired(
    metrics_run: Callable[[int | None], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    log = tmp_path / "runs" / "m.jsonl"
    log.parent.mkdir()
    whole = json.dumps({"job_id": "x", "stage": "pipeline", "metrics": {"state": "RUNNING"}})
    log.write_text(whole + "\n" + '{"job_id": "x", "stage": "reward_mo')
    assert metrics_run(None).returncode == 0
    records = whole_lines(log)
    assert records[0] == json.loads(whole) and len(records) == 1 + 60


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "the disk that holds it is full"),
        (errno.EDQUOT, "the disk quota of the disk that holds it is used up"),
        (errno.EFBIG, "the file would exceed the largest file"),
        (errno.EIO, "cannot be written"),
    ],
)
@pytest.mark.parametrize("kind", [DataError, PipelineError])
def test_a_failed_replacement_names_the_file_and_leaves_the_old_one(
    tmp_path: Path, code: int, words: str, kind: type[DataError]
) -> None:
    target = tmp_path / "out" / "file.yaml"
    target.parent.mkdir()
    target.write_text("old")

    def fails_midway(handle: object) -> None:
        handle.write(b"half of it")  # type: ignore[attr-defined]
        raise OSError(code, os.strerror(code))

    with pytest.raises(kind) as raised:
        writes.replace_whole(target, fails_midway, kind)
    assert raised.value.message.startswith(f"{target}: {words}")
    assert raised.value.hint
    assert target.read_text() == "old" and sorted(os.listdir(target.parent)) == ["file.yaml"]
