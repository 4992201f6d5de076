"""`make compare`: two stand-in runs side by side, from what Vertex returns and their
event files in the storage emulator."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import TEST_PROJECT, FakeClock
from tests.standins import training
from tests.standins.vertex import VertexStandIn, timeline_long_running
from tests.test_metrics import png_lines, png_panels
from vertex_rlhf import cli

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
DIGEST = "sha256:" + "ab" * 32
PARAMETERS = {
    "large_model_reference": "llama-2-7b",
    "preference_dataset": "gs://data/pref/*.jsonl",
    "reward_model_epochs": 30,
}


def add_run(
    vertex: VertexStandIn,
    tmp: Path,
    job_id: str,
    hour: float,
    kl_coeff: float,
    rows: int,
    loss_scale: float,
    registry: bool,
) -> None:
    bucket = f"rlhf-compare-{uuid.uuid4().hex[:10]}"
    counts = {"validate-dataset": rows, "validate-dataset-2": 2000, "validate-dataset-3": 100}
    timeline, uris = training.run_timeline(hour, bucket, job_id, counts)
    fields: dict[str, object] = {
        "runtimeConfig": {"parameterValues": {**PARAMETERS, "kl_coeff": kl_coeff}},
        "pipelineSpec": {"pipelineInfo": {"name": "rlhf-tuning"}, "kl": kl_coeff},
    }
    if registry:
        fields["templateUri"] = f"https://us-central1-kfp.pkg.dev/p/r/rlhf-tuning/{DIGEST}"
    labels = {"pipeline": "rlhf-tuning", "pipeline-version": "1-0-0", "environment": "dev"}
    vertex.add_job(f"{PARENT}/{job_id}", timeline, labels=labels, fields=fields)
    loss = [(s, round(loss_scale * (1 - s / 50), 4)) for s in range(40)]
    training.publish_events(tmp / job_id / "rm", uris["reward-model-trainer"], {"rank_loss": loss})
    reward = [(s, round(s / (10 * loss_scale), 4)) for s in range(20)]
    training.publish_events(tmp / job_id / "rl", uris["reinforcer"], {"reward": reward})


def table_row(out: str, label: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(label + "  "))
    return line[len(label) :].split()


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_compare_two_runs_table_and_overlay(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vertex = vertex_on_fake_clock
    add_run(vertex, tmp_path, "run-a", 3600.0, 0.1, 3000, 1.0, registry=True)
    add_run(vertex, tmp_path, "run-b", 7200.0, 0.2, 6000, 2.0, registry=False)
    clock.t = 10_000.0  # both have ended
    png = tmp_path / "compare.png"
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"

    assert (
        cli.main(["compare", "--jobs", "run-a run-b", "--env", "dev", "--png", str(png), endpoint])
        == 0
    )
    out = capsys.readouterr().out
    assert table_row(out, "job id") == ["run-a", "run-b"]
    assert table_row(out, "state") == ["SUCCEEDED", "SUCCEEDED"]
    assert table_row(out, "template version") == ["1-0-0", "1-0-0"]
    assert table_row(out, "template digest") == [DIGEST, "(local", "template)"]
    a_spec, b_spec = table_row(out, "pipeline spec")
    assert a_spec != b_spec and a_spec.startswith("sha256:")
    # only the parameter that differs
    assert table_row(out, "param kl_coeff") == ["0.1", "0.2"]
    assert "param large_model_reference" not in out and "param reward_model_epochs" not in out
    assert table_row(out, "rows preference") == ["3000", "6000"]
    assert table_row(out, "rows prompt") == ["2000", "2000"]
    assert table_row(out, "steps reward model") == ["1410", "1410"]
    # stage times from the task details: the reward model runs 170 s .. 0.45 h of each run
    assert table_row(out, "time reward model") == ["24m", "10s", "48m", "20s"]
    assert table_row(out, "time total") == ["1h", "00m", "2h", "00m"]
    assert table_row(out, "reward_model rank_loss final") == ["0.22", "0.44"]
    assert table_row(out, "reward_model rank_loss best") == ["0.22", "@", "39", "0.44", "@", "39"]
    assert table_row(out, "reinforcement_learning reward final") == ["1.9", "0.95"]

    assert png_panels(png) == ["reward model: rank_loss", "reinforcement learning: reward"]
    assert png_lines(png) == {
        "reward model: rank_loss": ["run-a", "run-b"],
        "reinforcement learning: reward": ["run-a", "run-b"],
    }
    assert f"chart: {png}" in out


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_compare_the_last_runs_of_an_environment(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vertex = vertex_on_fake_clock
    for number in range(3):
        add_run(vertex, tmp_path, f"run-{number}", 3600.0, 0.1 * number, 3000, 1.0, False)
        clock.t += 60
    labels = {"pipeline": "rlhf-tuning", "environment": "prod"}
    vertex.add_job(f"{PARENT}/prod-run", timeline_long_running(), labels=labels)
    clock.t = 10_000.0
    args = ["compare", "--last", "2", "--env", "dev", "--png", str(tmp_path / "c.png")]
    assert cli.main([*args, f"vertex_ai.api_endpoint={vertex.url}"]) == 0
    assert table_row(capsys.readouterr().out, "job id") == ["run-2", "run-1"]  # newest first


@pytest.mark.usefixtures("project_env")
def test_compare_refuses_bad_ids_before_any_call(
    vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"
    assert cli.main(["compare", "--jobs", "good-id Bad! ../x", endpoint]) == 12
    err = capsys.readouterr().err
    assert "JOB='Bad!' is neither a job id" in err and "JOB='../x'" in err
    assert cli.main(["compare", endpoint]) == 12
    assert 'name the runs to compare: JOBS="id1 id2" or LAST=N' in capsys.readouterr().err
    ids = " ".join(f"run-{i}" for i in range(11))
    assert cli.main(["compare", "--jobs", ids, endpoint]) == 12
    assert "at most 10" in capsys.readouterr().err
    assert cli.main(["compare", "run-a", "--last", "2", endpoint]) == 12
    assert "not both" in capsys.readouterr().err
    assert cli.main(["compare", "--last", "0", endpoint]) == 12
    assert "LAST=0: compare between 1 and 10 runs" in capsys.readouterr().err
    assert cli.main(["compare", "--last", "2", "--env", "dev", endpoint]) == 12
    assert "no runs of rlhf-tuning with environment=dev" in capsys.readouterr().err
    assert vertex.calls("POST") == [] and len(vertex.calls("GET")) == 1  # only the listing
