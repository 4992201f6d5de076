"""`make metrics` and the monitor's hook: real event files in the storage emulator, task
details from the Vertex stand-in, the JSONL log, the summary and the PNG."""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TEST_PROJECT, FakeClock
from tests.standins import training
from tests.standins.vertex import VertexStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import metrics, monitor
from vertex_rlhf.cloud.vertex import VertexTarget

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
RANK_LOSS = [(step, round(0.7 - 0.01 * step, 4)) for step in range(40)]
ACCURACY = [(step, round(0.5 + 0.01 * step, 4)) for step in range(40)]
REWARD = [(step, round(0.1 * step, 4)) for step in range(20)]
KL_LOSS = [(step, round(0.001 * step, 4)) for step in range(20)]


def bucket() -> str:
    return f"rlhf-metrics-{uuid.uuid4().hex[:10]}"


def png_panels(path: Path) -> list[str]:
    from PIL import Image

    with Image.open(path) as image:
        return list(json.loads(image.text["Panels"]))  # type: ignore[attr-defined]


def png_lines(path: Path) -> dict[str, list[str]]:
    from PIL import Image

    with Image.open(path) as image:
        return dict(json.loads(image.text["Lines"]))  # type: ignore[attr-defined]


def png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def metric_records(log: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in records if r["stage"] in metrics.STAGES]


def series_in(records: list[dict[str, Any]], stage: str, name: str) -> list[tuple[int, float]]:
    return [
        (r["metrics"]["step"], r["metrics"][name])
        for r in records
        if r["stage"] == stage and name in r["metrics"]
    ]


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_make_metrics_logs_every_scalar_once_and_draws_a_panel_per_metric(
    vertex: VertexStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = f"{PARENT}/rlhf-tuning-dev-metrics"
    timeline, uris = training.run_timeline(0.0036, bucket(), "rlhf-tuning-dev-metrics")
    vertex.add_job(job, timeline)
    rm, rl = uris["reward-model-trainer"], uris["reinforcer"]
    training.publish_events(tmp_path / "rm", rm, {"rank_loss": RANK_LOSS, "accuracy": ACCURACY})
    # TF1-style simple_value summaries, in a sub-folder (a TensorBoard "run").
    training.publish_events(tmp_path / "rl", f"{rl}/train", {"reward": REWARD}, legacy=True)
    training.publish_events(tmp_path / "rl2", rl, {"kl_loss": KL_LOSS})
    log, png = tmp_path / "runs" / "m.jsonl", tmp_path / "runs" / "m.png"
    args = ["metrics", "rlhf-tuning-dev-metrics", "--env", "dev"]
    args += [f"vertex_ai.api_endpoint={vertex.url}", "--metrics-log", str(log), "--png", str(png)]

    assert cli.main(args) == 0
    out = capsys.readouterr().out
    records = metric_records(log)
    assert all(set(r) == {"timestamp", "job_id", "stage", "metrics"} for r in records)
    assert {r["job_id"] for r in records} == {job}
    assert series_in(records, "reward_model", "rank_loss") == RANK_LOSS
    assert series_in(records, "reward_model", "accuracy") == ACCURACY
    assert series_in(records, "reinforcement_learning", "train/reward") == REWARD
    assert series_in(records, "reinforcement_learning", "kl_loss") == KL_LOSS
    # one record per stage and step, steps in order, reward model first
    assert len(records) == 40 + 20
    assert [r["stage"] for r in records] == ["reward_model"] * 40 + ["reinforcement_learning"] * 20
    assert records[0]["timestamp"] == "2027-01-15T08:00:00+00:00"  # the event's wall time

    # the summary: first, last, best, trend over the last tenth
    line = next(x for x in out.splitlines() if x.startswith("reward_model rank_loss"))
    assert "first       0.7" in line and "last      0.31" in line and "best      0.31 @ 39" in line
    assert "last 10%: -0.03 (improving; lower is better)" in line
    assert "[40 points]" in line

    panels = [
        "reward model: accuracy",
        "reward model: rank_loss",
        "reinforcement learning: kl_loss",
        "reinforcement learning: train/reward",
    ]
    assert png_panels(png) == panels
    assert png_size(png) == (3 * 500, 2 * 320 + 60)  # 3 columns, 2 rows of panels
    assert f"chart: {png}" in out

    # Run again: nothing new, nothing duplicated.
    before = log.read_bytes()
    assert cli.main(args) == 0
    assert log.read_bytes() == before
    assert "0 new step record(s)" in capsys.readouterr().out

    # The trainer writes a second file with further steps: only those are appended.
    more = [(step, 0.3) for step in range(40, 45)]
    training.publish_events(tmp_path / "rm2", rm, {"rank_loss": more})
    assert cli.main(args) == 0
    records = metric_records(log)
    assert series_in(records, "reward_model", "rank_loss") == RANK_LOSS + more
    assert len(records) == 60 + 5


def test_metric_sources_skip_what_is_not_a_cloud_storage_folder() -> None:
    def task(task_id: str, name: str, uri: str, parent: str = "") -> dict[str, Any]:
        detail: dict[str, Any] = {
            "task_id": task_id,
            "task_name": name,
            "state": "RUNNING",
            "outputs": {"tensorboard_metrics": {"artifacts": [{"uri": uri}]}},
        }
        if parent:
            detail["parent_task_id"] = parent
        return detail

    job = {
        "name": "j",
        "state": "PIPELINE_STATE_RUNNING",
        "job_detail": {
            "task_details": [
                {"task_id": "1", "task_name": "reinforcement-learning-graph", "state": "RUNNING"},
                task("2", "reinforcer-2", "/gcs/bucket-a/rl/tensorboard_metrics/", parent="1"),
                task("3", "reward-model-trainer", "gs://bucket-b/rm/tensorboard_metrics"),
                task("4", "reward-model-trainer", "gs://Bad Bucket/x"),
                task("5", "reward-model-trainer", "gs://bucket-c/a/../../etc"),
                task("6", "reward-model-trainer", "file:///etc/passwd"),
                task("7", "unrelated-task", "gs://bucket-d/x"),
            ]
        },
    }
    sources, warnings = metrics.metric_sources(job)
    assert [(s.stage, s.uri) for s in sources] == [
        ("reward_model", "gs://bucket-b/rm/tensorboard_metrics"),
        ("reinforcement_learning", "gs://bucket-a/rl/tensorboard_metrics"),  # by its graph
    ]
    assert len(warnings) == 4
    assert all("skipped tensorboard_metrics" in w for w in warnings)


def test_new_records_group_by_step_and_skip_what_is_logged() -> None:
    def p(name: str, step: int, value: float | None) -> metrics.Point:
        return metrics.Point("reward_model", name, step, value, 1_800_000_000.0 + step)

    logged = [p("loss", 1, 0.5)]
    points = [p("loss", 1, 0.5), p("acc", 1, 0.6), p("loss", 2, None)]
    points += [p("loss", 2, None), p("acc", 1, 0.6)]
    records = metrics.new_records("job", points, logged)
    assert [r["metrics"] for r in records] == [
        {"acc": 0.6, "step": 1},
        {"loss": None, "step": 2},
    ]


def test_summary_knows_which_way_is_better() -> None:
    def series(name: str, values: list[float]) -> list[metrics.Point]:
        return [
            metrics.Point("reinforcement_learning", name, i, v, 0.0) for i, v in enumerate(values)
        ]

    rising = [0.1 * i for i in range(20)]
    points = series("reward", rising) + series("kl_loss", rising)
    points.append(metrics.Point("reinforcement_learning", "kl_loss", 20, None, 0.0))
    by_name = {s.name: s for s in metrics.summarize(points)}
    assert (by_name["reward"].best, by_name["reward"].best_step) == (pytest.approx(1.9), 19)
    assert (by_name["kl_loss"].best, by_name["kl_loss"].best_step) == (0.0, 0)
    assert by_name["kl_loss"].non_finite == 1
    assert by_name["reward"].trend == pytest.approx(0.1)  # last tenth: steps 18 -> 19

    from vertex_rlhf.views.tables import render_summary, trend_word

    assert trend_word(by_name["reward"]) == "improving"
    assert trend_word(by_name["kl_loss"]) == "worsening"
    assert "1 NaN/inf point(s)!" in render_summary(list(by_name.values()))


@pytest.mark.usefixtures("storage_emulator")
def test_monitor_picks_new_points_up_as_they_appear(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    vertex = vertex_on_fake_clock
    job = f"{PARENT}/rlhf-tuning-dev-live"
    timeline, uris = training.run_timeline(3600.0, bucket(), "rlhf-tuning-dev-live")
    vertex.add_job(job, timeline)
    first = RANK_LOSS[:20]
    training.publish_events(tmp_path / "a", uris["reward-model-trainer"], {"rank_loss": first})
    log = tmp_path / "live.jsonl"
    steps_seen: list[int] = []

    def sleep(seconds: float) -> None:
        # The trainers keep writing while the monitor waits between polls.
        clock.sleep(seconds)
        steps_seen.append(len(metric_records(log)) if log.exists() else 0)
        if 1000 <= clock.t < 1000 + seconds:
            training.publish_events(
                tmp_path / "b", uris["reward-model-trainer"], {"rank_loss": RANK_LOSS[20:]}
            )
        if 0.5 * 3600 <= clock.t < 0.5 * 3600 + seconds:
            training.publish_events(tmp_path / "c", uris["reinforcer"], {"reward": REWARD})

    out = io.StringIO()
    watch = monitor.PipelineMonitor(
        VertexTarget(TEST_PROJECT, "us-central1", vertex.url),
        metrics_log=log,
        clock=clock,
        sleep=sleep,
        now=clock.now,
        out=out,
        on_poll=metrics.MetricsFollower(log, out=out),
    )
    status = watch.monitor_job_with_updates(job)
    assert status.state == "SUCCEEDED"
    records = metric_records(log)
    assert series_in(records, "reward_model", "rank_loss") == RANK_LOSS
    assert series_in(records, "reinforcement_learning", "reward") == REWARD
    # points arrived in three batches, each logged once, while the run was going
    assert sorted(set(steps_seen)) == [0, 20, 40, 60]
    assert out.getvalue().count("metrics: +") == 3
    assert "metrics: +20 step(s); reinforcement_learning: reward 1.9, step 19" in out.getvalue()
    # the hook reads the job the monitor already read: no extra Vertex calls
    assert watch.api_calls == len(vertex.calls("GET"))


def test_the_monitor_keeps_going_when_the_event_files_cannot_be_read(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    vertex = vertex_on_fake_clock
    timeline, _ = training.run_timeline(600.0, bucket(), "j")
    vertex.add_job(f"{PARENT}/j", timeline)

    class Broken:
        def list_blobs(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("storage unreachable")

    out = io.StringIO()
    follower = metrics.MetricsFollower(
        tmp_path / "l.jsonl", out=out, files=metrics.EventFiles(client=Broken())
    )
    watch = monitor.PipelineMonitor(
        VertexTarget(TEST_PROJECT, "us-central1", vertex.url),
        clock=clock,
        sleep=clock.sleep,
        now=clock.now,
        out=out,
        on_poll=follower,
    )
    assert watch.monitor_job_with_updates(f"{PARENT}/j").state == "SUCCEEDED"
    assert out.getvalue().count("metrics: cannot read the event files yet") == 1


@pytest.mark.usefixtures("project_env")
def test_bad_job_ids_are_refused_before_any_call(
    vertex: VertexStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"
    for bad in ("Bad Job!", "../../etc", "a/b", "x" * 200):
        assert cli.main(["metrics", bad, "--env", "dev", endpoint]) == 12
        assert "is neither a job id" in capsys.readouterr().err
    assert vertex.calls() == []
    assert cli.main(["metrics", "no-such-job", "--env", "dev", endpoint]) == 12
    assert "not found" in capsys.readouterr().err


def test_make_quotes_the_job_id(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for job in (f"x; touch {marker}", f"`touch {marker}`", f"x' ; touch {marker}; '"):
        result = subprocess.run(
            # -o: never reinstall the virtualenv from a test
            [
                "make",
                "-s",
                "--no-print-directory",
                "-o",
                ".venv/.installed",
                "metrics",
                f"JOB={job}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        )
        assert result.returncode == 2, result.stderr  # make reports the recipe failed
        assert "is neither a job id" in result.stderr
    assert not marker.exists()


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_an_unreadable_artifact_is_a_coded_error(
    vertex: VertexStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline, uris = training.run_timeline(0.0036, bucket(), "gone")  # bucket never created
    vertex.add_job(f"{PARENT}/gone", timeline)
    args = ["metrics", "gone", "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}"]
    assert cli.main([*args, "--metrics-log", str(tmp_path / "l.jsonl")]) == 12
    err = capsys.readouterr().err
    assert f"error[CONFIG_002]: read {uris['reward-model-trainer']}: not found" in err
    assert not (tmp_path / "l.jsonl").exists()
