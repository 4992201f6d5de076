"""Two writers at once: one wins per output set, the other waits or stops; nothing doubles.

Real processes: several ``rlhf metrics`` (and the monitor's log writer) on one run's log
at the same moment, and two ``convert-data`` runs into the same outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import TEST_PROJECT, default_signals
from tests.standins import training
from tests.standins.vertex import VertexStandIn
from tests.test_convert_guarantees import output_begun, seed_lines, wait_for

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
STEPS = 3000


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vertex_rlhf", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        preexec_fn=default_signals,
    )


MONITOR_WRITER = """
import sys
from pathlib import Path
from vertex_rlhf.data.writes import append_lines
line = '{"job_id": "j", "stage": "pipeline", "metrics": {"i": %d}}'
for i in range(int(sys.argv[2])):
    append_lines(Path(sys.argv[1]), [line % i])
"""


@pytest.mark.parametrize("writers", [2, 4])
@pytest.mark.usefixtures("project_env")
def test_metrics_runs_at_once_log_every_point_once(
    storage_emulator: str, vertex: VertexStandIn, tmp_path: Path, writers: int
) -> None:
    job = f"w-{uuid.uuid4().hex[:8]}"
    timeline, uris = training.run_timeline(0.0036, f"rlhf-two-{uuid.uuid4().hex[:10]}", job)
    vertex.add_job(f"{PARENT}/{job}", timeline)
    loss = [(step, 1.0 / (step + 1)) for step in range(STEPS)]
    training.publish_events(tmp_path / "rm", uris["reward-model-trainer"], {"loss": loss})
    log = tmp_path / "runs" / "w.jsonl"
    args = ["metrics", job, "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}"]
    args += ["--metrics-log", "runs/w.jsonl", "--png", "runs/w.png"]
    # The monitor's task-state writer appends to the same log meanwhile.
    monitor = subprocess.Popen(
        [sys.executable, "-c", MONITOR_WRITER, str(log), "200"], cwd=tmp_path
    )
    runs = [start(args, tmp_path) for _ in range(writers)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert monitor.wait(timeout=60) == 0
    data = log.read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    steps = Counter(r["metrics"]["step"] for r in records if r["stage"] == "reward_model")
    assert sorted(steps) == list(range(STEPS)) and set(steps.values()) == {1}
    assert sorted(r["metrics"]["i"] for r in records if r["stage"] == "pipeline") == list(
        range(200)
    )


def convert_args(source: Path, seed: int) -> list[str]:
    return [
        str(source),
        "out/train.jsonl",
        "--kind=preference",
        f"--seed={seed}",
        "--eval-out=out/eval.jsonl",
        "--eval-fraction=0.3",
        "--force",
    ]


def prompts(path: Path) -> set[str]:
    return {json.loads(line)["input_text"] for line in path.read_bytes().splitlines()}


@pytest.mark.parametrize("same_input", [True, False], ids=["same input", "other input"])
def test_two_conversions_into_the_same_outputs_never_mix(tmp_path: Path, same_input: bool) -> None:
    first_in, second_in = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first_in.write_bytes(seed_lines(200_000, tag="a"))
    second_in.write_bytes(seed_lines(200_000, tag="a" if same_input else "b"))
    (tmp_path / "out").mkdir()
    first = start(["convert-data", *convert_args(first_in, 1)], tmp_path)
    wait_for(output_begun(tmp_path / "out"), first)  # the first is mid-way
    second = start(["convert-data", *convert_args(second_in, 2)], tmp_path)
    _, second_err = second.communicate(timeout=300)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 15, second_err
    assert "error[DATA_005]: out/" in second_err and "another run is writing it now" in second_err
    assert "Traceback" not in second_err
    # train and eval both come from the first run: the split holds, nothing is left over
    train, evals = (
        prompts(tmp_path / "out" / "train.jsonl"),
        prompts(tmp_path / "out" / "eval.jsonl"),
    )
    assert not train & evals
    assert len(train) + len(evals) == 200_000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["eval.jsonl", "train.jsonl"]
    # Once the first is done, the second may run.
    again = start(["convert-data", *convert_args(second_in, 2)], tmp_path)
    assert again.wait(timeout=300) == 0
