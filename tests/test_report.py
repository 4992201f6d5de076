"""`make report`: a run's report as one self-contained HTML page, end to end against the
Vertex stand-in and the storage emulator (real SDKs), and drawn by a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TEST_PROJECT, FakeClock
from tests.standins import training
from tests.standins.vertex import (
    VertexStandIn,
    timeline_training_failure,
    timeline_validation_failure,
)
from vertex_rlhf import cli
from vertex_rlhf.usecases import report
from vertex_rlhf.views import report_html

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
DIGEST = "sha256:" + "cd" * 32
SECTION_IDS = [ident for ident, _ in report_html.SECTIONS]
PARAMETERS: dict[str, Any] = {
    "large_model_reference": "llama-2-7b",
    "preference_dataset": "gs://data/pref/*.jsonl",
    "prompt_dataset": "gs://data/prompts/*.jsonl",
    "reward_model_epochs": 30.0,  # aiplatform sends integers as JSON numbers
    "reinforcement_learning_epochs": 10.0,
    "reward_model_train_steps": 0.0,
    "kl_coeff": 0.1,
}
# Hostile text: markup that would end our tags, control characters, bidi marks.
HOSTILE = "<script>alert('x')</script></style></svg><img src=http://evil.example/x>\x1b[31m\u202e"
HUGE = "A" * 1_000_000


def bucket() -> str:
    return f"rlhf-report-{uuid.uuid4().hex[:10]}"


def put(uri: str, data: bytes, tmp: Path) -> None:
    local = tmp / uuid.uuid4().hex
    local.write_bytes(data)
    training.upload(local, uri)


def add_succeeded_run(
    vertex: VertexStandIn,
    tmp: Path,
    job_id: str,
    predictions: list[dict[str, Any]] | None = None,
    extra_params: dict[str, Any] | None = None,
    series: dict[str, list[tuple[int, float]]] | None = None,
) -> str:
    """A succeeded run with event files, and bulk-inference predictions when given."""
    where = bucket()
    timeline, uris = training.run_timeline(3600.0, where, job_id)
    params = {**PARAMETERS, **(extra_params or {})}
    if predictions is not None:
        params["eval_dataset"] = "gs://data/eval/*.jsonl"
        out = f"gs://{where}/{job_id}/bulk-inferrer/output_prediction/predictions.jsonl"
        lines = b"".join(json.dumps(p).encode() + b"\n" for p in predictions)
        put(out, lines, tmp)
        last = timeline[-1]
        outputs = {**last.outputs, "bulk-inferrer": {"output_prediction_gcs_path": out}}
        timeline[-1] = replace(last, outputs=outputs)
    fields = {
        "runtimeConfig": {"parameterValues": params},
        "templateUri": f"https://us-central1-kfp.pkg.dev/{TEST_PROJECT}/t/rlhf-tuning/{DIGEST}",
        "pipelineSpec": {"pipelineInfo": {"name": "rlhf-tuning"}},
    }
    labels = {"pipeline": "rlhf-tuning", "pipeline-version": "1-2-0", "environment": "dev"}
    vertex.add_job(f"{PARENT}/{job_id}", timeline, labels=labels, fields=fields)
    loss = [(s, round(0.7 - 0.01 * s, 4)) for s in range(40)]
    training.publish_events(
        tmp / job_id / "rm", uris["reward-model-trainer"], series or {"rank_loss": loss}
    )
    reward = [(s, round(0.1 * s, 4)) for s in range(20)]
    training.publish_events(tmp / job_id / "rl", uris["reinforcer"], {"reward": reward})
    return where


class Page(HTMLParser):
    """What a page holds: elements by tag, ids, attributes, and its visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if "id" in a}

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]

    @property
    def visible(self) -> str:
        return "".join(self.text)


def report_args(vertex: VertexStandIn, job: str, *more: str) -> list[str]:
    return ["report", job, "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}", *more]


def loads_nothing(page: Page) -> None:
    """Nothing in the page would be fetched when it is viewed."""
    for tag, attrs in page.tags:
        for key in ("src", "srcset", "data", "poster", "background"):
            assert key not in attrs or attrs[key].startswith("data:"), (tag, attrs)
        if tag == "link":
            pytest.fail(f"a <link> loads a resource: {attrs}")
    styles = "".join(a.get("style", "") for _, a in page.tags)
    assert "url(" not in styles and "@import" not in styles


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_report_of_a_succeeded_run_shows_every_section(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vertex = vertex_on_fake_clock
    predictions = [
        {"inputs": {"inputs_pretokenized": f"Summarize post {n}"}, "prediction": f"Summary {n}"}
        for n in range(20)
    ]
    add_succeeded_run(vertex, tmp_path, "run-ok", predictions)
    clock.t = 10_000.0
    monkeypatch.chdir(tmp_path)

    assert cli.main(report_args(vertex, "run-ok", "--samples", "3")) == 0
    out = capsys.readouterr().out
    written = tmp_path / "runs" / "run-ok.html"
    assert f"report: {Path('runs') / 'run-ok.html'}" in out and "SUCCEEDED (100%)" in out
    page = Page(written.read_text(encoding="utf-8"))
    assert set(SECTION_IDS) <= page.ids()
    text = page.visible
    # state and timeline by stage
    assert "SUCCEEDED" in text and "1h 00m" in text
    bars = [a for a in page.all("rect") if a.get("class") == "bar"]
    assert len(bars) >= 10  # every task that ran has its bar
    # template version and digest
    assert "1-2-0" in text and DIGEST in text
    # parameters sent (integers shown as integers)
    assert "gs://data/pref/*.jsonl" in text and "llama-2-7b" in text
    assert "reward_model_epochs30" in text.replace(" ", "")
    # the datasets' row counts and layouts from the checks' outputs
    assert "3,000" in text and "2,000" in text and "text" in text
    # the computed steps, and what they came from
    assert "1,410" in text and "ceil(3,000 rows / 64) = 47 x 30 epochs" in text
    # a chart per metric, and their summaries (synced into the log as make metrics does)
    charts = [a["id"] for a in page.all("svg") if a.get("class") == "chart"]
    assert charts == ["timeline-chart", "chart-0", "chart-1"]
    assert "reward model: rank_loss" in text and "reinforcement learning: reward" in text
    assert "best 0.31 @ step 39" in text
    assert (tmp_path / "runs" / "run-ok.jsonl").is_file()
    # eval prompts with the tuned model's responses: a bounded sample
    assert "Summarize post 0" in text and "Summary 2" in text and "Summarize post 3" not in text
    assert "The run succeeded" in text
    loads_nothing(page)
    assert len(page.all("script")) == 2  # the page's own two, nothing else


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_report_of_a_run_that_failed_in_training_shows_the_failure_and_its_fix(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vertex = vertex_on_fake_clock
    fields = {"runtimeConfig": {"parameterValues": PARAMETERS}}
    message = "RESOURCE_EXHAUSTED: CUDA out of memory on reward-model-trainer"
    vertex.add_job(f"{PARENT}/run-oom", timeline_training_failure(message), fields=fields)
    clock.t = 1000.0
    out = tmp_path / "oom.html"
    assert cli.main(report_args(vertex, "run-oom", "--output", str(out))) == 0
    assert "FAILED" in capsys.readouterr().out
    page = Page(out.read_text(encoding="utf-8"))
    text = page.visible
    assert "error[TRAINING_004]" in text and "reward-model-trainer" in text
    assert message in text
    assert "fix: the batch size is fixed at 64: lower training.prompt_sequence_length" in text
    assert "No training metrics were logged" in text  # no event files: said, not failed
    assert "This run had no eval dataset" in text
    assert set(SECTION_IDS) <= page.ids()


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_report_of_a_run_that_failed_its_dataset_checks_points_at_validate_data(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    vertex = vertex_on_fake_clock
    fields = {"runtimeConfig": {"parameterValues": PARAMETERS}}
    message = "gs://data/pref/a.jsonl:7: choice: must be 0 or 1"
    vertex.add_job(f"{PARENT}/run-bad-data", timeline_validation_failure(message), fields=fields)
    clock.t = 1000.0
    out = tmp_path / "bad.html"
    assert cli.main(report_args(vertex, "run-bad-data", "--output", str(out))) == 0
    text = Page(out.read_text(encoding="utf-8")).visible
    assert "error[DATA_005]" in text and message in text
    assert "make validate-data" in text


def test_a_running_run_has_no_failure_yet() -> None:
    job = {
        "name": f"{PARENT}/run-going",
        "state": "PIPELINE_STATE_RUNNING",
        "create_time": "2026-11-27T09:00:00Z",
        "start_time": "2026-11-27T09:00:00Z",
        "job_detail": {
            "task_details": [
                {
                    "task_id": "1",
                    "task_name": "validate-dataset",
                    "state": "RUNNING",
                    "start_time": "2026-11-27T09:00:10Z",
                }
            ]
        },
    }
    found = report.report_of(job)
    assert found.failure is None and not found.ended
    text = Page(report_html.render(found)).visible
    assert "The run has not ended" in text and "(still running)" in text


HOSTILE_TASK = "<script>alert('task')</script>"


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_hostile_text_from_the_server_and_the_data_shows_escaped_and_bounded(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vertex = vertex_on_fake_clock
    # A failed run whose error, task name, labels, parameters, dataset layout, metric
    # names and eval rows all hold markup, control characters, bidi marks and megabytes.
    where = bucket()
    failure = timeline_training_failure(HOSTILE + HUGE)
    last = failure[-1]
    tasks = {**last.tasks, HOSTILE_TASK: "FAILED", "bulk-inferrer": "SUCCEEDED"}
    outputs = {
        "validate-dataset": {"rows": 3000, "layout": HOSTILE},
        "bulk-inferrer": {
            "output_prediction_gcs_path": f"gs://{where}/out/predictions.jsonl",
        },
    }
    uri = f"gs://{where}/job/reward-model-trainer/tensorboard_metrics"
    failure[-1] = replace(
        last,
        tasks=tasks,
        errors={**last.errors, HOSTILE_TASK: HOSTILE},
        outputs=outputs,
        artifacts={"reward-model-trainer": {"tensorboard_metrics": [uri]}},
    )
    training.publish_events(tmp_path / "ev", uri, {f"{HOSTILE}loss": [(0, 1.0), (1, 0.5)]})
    predictions = [
        {"inputs": {"inputs_pretokenized": HOSTILE + HUGE}, "prediction": HOSTILE},
        {"input_text": "plain prompt", "output": "</div></section><script>x()</script>"},
    ]
    put(
        f"gs://{where}/out/predictions.jsonl",
        b"".join(json.dumps(p).encode() + b"\n" for p in predictions),
        tmp_path,
    )
    params = {
        **PARAMETERS,
        "instruction": HOSTILE + HUGE,
        "eval_dataset": f"gs://data/{HOSTILE}",
        HOSTILE: HOSTILE,
    }
    vertex.add_job(
        f"{PARENT}/run-hostile",
        failure,
        labels={"team": HOSTILE},
        fields={"runtimeConfig": {"parameterValues": params}},
    )
    clock.t = 1000.0
    out = tmp_path / "hostile.html"
    args = report_args(vertex, "run-hostile", "--output", str(out))
    assert cli.main([*args, "--metrics-log", str(tmp_path / "m.jsonl")]) == 0
    capsys.readouterr()
    raw = out.read_text(encoding="utf-8")
    page = Page(raw)
    # Markup from outside is text: only the page's own two scripts, no image, no link.
    assert len(page.all("script")) == 2 and page.all("img") == [] and page.all("link") == []
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;/style&gt;" in raw
    assert "<script>alert" not in raw and "</style></svg>" not in raw
    text = page.visible
    assert HOSTILE_TASK in text  # the task name, shown literally
    assert "plain prompt" in text and "</div></section><script>x()</script>" in text
    # Control characters and bidi marks are shown as escapes, never sent to the reader.
    assert "\x1b" not in raw and "\u202e" not in raw
    assert "\\x1b[31m" in text and "\\u202e" in text
    # Megabyte texts are cut, and say by how much.
    assert len(raw) < 300_000
    assert "more characters]" in text
    assert f"{HOSTILE[:8]}" in text
    assert set(SECTION_IDS) <= page.ids()
    loads_nothing(page)


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_the_eval_sample_reads_a_bounded_head_of_a_huge_output(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vertex_rlhf.data import files

    vertex = vertex_on_fake_clock
    rows = [
        {"inputs": {"inputs_pretokenized": f"p{n}"}, "prediction": "r" * 1000} for n in range(4000)
    ]
    add_succeeded_run(vertex, tmp_path, "run-big", rows)
    clock.t = 10_000.0
    read: list[int] = []
    real = files.ObjectReader.read

    def counted(self: files.ObjectReader, size: int | None = -1) -> bytes:
        data = real(self, size)
        if self.name.endswith("predictions.jsonl"):
            read.append(len(data))
        return data

    monkeypatch.setattr(files.ObjectReader, "read", counted)
    monkeypatch.chdir(tmp_path)
    assert cli.main(report_args(vertex, "run-big", "--samples", "2")) == 0
    # ~4 MB of predictions; two rows need the first 64 KiB block only.
    assert 0 < sum(read) <= 64 * 1024
    text = Page((tmp_path / "runs" / "run-big.html").read_text()).visible
    assert "p0" in text and "p1" in text and "p2" not in text
    assert "the first 2 row(s) of gs://" in text


def test_an_eval_dataset_without_bulk_inference_says_what_state_the_task_is_in() -> None:
    job = {
        "name": f"{PARENT}/run-no-bulk",
        "state": "PIPELINE_STATE_FAILED",
        "runtime_config": {"parameter_values": {"eval_dataset": "gs://data/eval.jsonl"}},
        "job_detail": {
            "task_details": [{"task_id": "9", "task_name": "bulk-inferrer", "state": "CANCELLED"}]
        },
    }
    found = report.eval_sample(job, 5, [])
    assert found is not None and found.samples == [] and found.source == ""
    assert "the bulk-inferrer task is CANCELLED" in found.note
    job["job_detail"] = {"task_details": []}
    assert "the bulk-inferrer task is not in the run" in report.eval_sample(job, 5, []).note  # type: ignore[union-attr]
    job["runtime_config"] = {"parameter_values": {"eval_dataset": ""}}
    assert report.eval_sample(job, 5, []) is None


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_an_unreadable_eval_output_or_metrics_is_a_warning_in_the_report(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vertex = vertex_on_fake_clock
    timeline, _ = training.run_timeline(3600.0, bucket(), "run-gone")  # no bucket: nothing
    last = timeline[-1]
    gone = f"gs://{bucket()}/nothing/predictions.jsonl"
    outputs = {**last.outputs, "bulk-inferrer": {"output_prediction_gcs_path": gone}}
    timeline[-1] = replace(last, outputs=outputs)
    params = {**PARAMETERS, "eval_dataset": "gs://data/eval.jsonl"}
    vertex.add_job(
        f"{PARENT}/run-gone", timeline, fields={"runtimeConfig": {"parameterValues": params}}
    )
    clock.t = 10_000.0
    out = tmp_path / "gone.html"
    args = report_args(vertex, "run-gone", "--output", str(out))
    assert cli.main([*args, "--metrics-log", str(tmp_path / "m.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "warning: the training metrics could not be read" in err
    assert "warning: the bulk-inference predictions could not be read" in err
    text = Page(out.read_text()).visible
    assert "the training metrics could not be read" in text
    assert "the predictions could not be read" in text


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_the_report_is_written_whole_or_not_at_all(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import errno

    vertex = vertex_on_fake_clock
    add_succeeded_run(vertex, tmp_path, "run-disk")
    clock.t = 10_000.0
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "r.html"
    args = [*report_args(vertex, "run-disk", "--output", str(out))]
    args += ["--metrics-log", str(tmp_path / "m.jsonl")]

    def full(_: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # A first write on a full disk: no file, no temporary left beside it.
    monkeypatch.setattr(os, "fsync", full)
    assert cli.main(args) == 15
    err = capsys.readouterr().err
    assert f"error[DATA_005]: {out}: the disk that holds it is full" in err
    assert list(folder.iterdir()) == []
    # A good report, then a failing rewrite: the good one stays, whole.
    monkeypatch.undo()
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    assert cli.main(args) == 0
    before = out.read_bytes()
    assert before.rstrip().endswith(b"</html>")
    monkeypatch.setattr(os, "fsync", full)
    assert cli.main(args) == 15
    assert out.read_bytes() == before and list(folder.iterdir()) == [out]


BAD_JOBS = [
    ("Bad!", "is neither a job id"),
    ("../../etc/passwd", "is neither a job id"),
    ("a/b", "is neither a job id"),
    ("x" * 129, "is neither a job id"),
    ("run\nnext", "is neither a job id"),
    ("run-\u202eevil", "is neither a job id"),
    ("UPPER", "is neither a job id"),
    (f"projects/{TEST_PROJECT}/locations/evil.example:443#/pipelineJobs/x", "locations"),
    (f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/../x", ""),
]


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(("job", "said"), BAD_JOBS, ids=[repr(j)[:30] for j, _ in BAD_JOBS])
def test_a_bad_job_id_is_refused_before_any_call_or_file(
    vertex: VertexStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    job: str,
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(report_args(vertex, job)) == 12
    err = capsys.readouterr().err
    assert "error[CONFIG_002]" in err and said in err
    assert vertex.calls() == [] and list(tmp_path.iterdir()) == []


BAD_FLAGS = [
    (["--samples", "0"], "--samples '0': must be a whole number from 1 to 50"),
    (["--samples", "51"], "--samples '51': must be a whole number from 1 to 50"),
    (["--samples", "many"], "--samples 'many'"),
    (["--output", "."], "is a directory; give a file"),
    (["--timeout", "-1"], "--timeout"),
]


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(("flags", "said"), BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_are_refused_before_any_call(
    vertex: VertexStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(report_args(vertex, "run-a", *flags)) == 12
    assert said in capsys.readouterr().err
    assert vertex.calls() == []


def test_an_output_under_a_file_is_refused(tmp_path: Path, project_env: str) -> None:
    (tmp_path / "file").write_text("x")
    args = ["report", "run-a", "--output", str(tmp_path / "file" / "r.html")]
    assert cli.main([*args, "vertex_ai.api_endpoint=http://127.0.0.1:9"]) == 12


def test_the_default_file_name_is_checked_too() -> None:
    assert report.default_output("run-a") == Path("runs/run-a.html")
    for bad in ("../x", "a/b", "", "x" * 200, ".hidden"):
        with pytest.raises(Exception, match="job id"):
            report.default_output(bad)


PREDICTION_ROWS = [
    (b'{"inputs": {"inputs_pretokenized": "P"}, "prediction": "R"}', ("P", "R", "")),
    (b'{"input_text": "P", "output": "R"}', ("P", "R", "")),
    (b'{"prompt": "P", "predictions": ["R", "S"]}', ("P", "R", "")),
    (b'{"inputs": "P", "prediction": "R"}\r', ("P", "R", "")),
    (
        b'{"messages": [{"author": "user", "content": "P"}], "prediction": "R"}',
        ("P", "R", ""),
    ),
    (b'{"something": 1}', ("", "", '{"something": 1}')),
    (b"[1, 2]", ("", "", "[1, 2]")),
    (b"not json \xff", ("", "", "not json \ufffd")),
]


@pytest.mark.parametrize(("line", "expected"), PREDICTION_ROWS)
def test_prediction_rows_are_read_in_every_layout_or_shown_raw(
    line: bytes, expected: tuple[str, str, str]
) -> None:
    sample = report.parse_prediction(line)
    assert (sample.prompt, sample.response, sample.raw) == expected


def test_a_metric_chart_breaks_at_nan_and_thins_long_series() -> None:
    from vertex_rlhf.cloud.metrics import Point

    points = [
        Point("reward_model", "loss", s, None if s == 50 else 1.0 / (s + 1), 0.0)
        for s in range(100_000)
    ]
    svg = report_html.metric_svg(0, "reward_model", "loss", points)
    lines = re.findall(r'<polyline points="([^"]*)"', svg)
    assert len(lines) == 2  # broken at the NaN
    assert all(len(line.split()) <= report_html.MAX_CHART_POINTS + 2 for line in lines)
    assert len(svg) < 40_000


def test_make_report_passes_its_values_raw(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for job in (f"x; touch {marker}", f"`touch {marker}`", f"$(touch {marker})"):
        result = subprocess.run(
            [
                "make",
                "-s",
                "--no-print-directory",
                "-o",
                ".venv/.installed",
                "report",
                f"JOB={job}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        )
        assert result.returncode == 2, result.stderr
        assert "error[CONFIG_002]" in result.stderr and "is neither a job id" in result.stderr
    assert not marker.exists()
    result = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "report",
            "JOB=run-a",
            "ARGS=--samples 0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
    )
    assert "--samples '0': must be a whole number from 1 to 50" in result.stderr
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", "report"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "set JOB=<job id or resource name>" in result.stderr
    listed = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True)
    assert re.search(r"^  report\s+a run's report", listed.stdout, re.MULTILINE)


# --- a real browser ------------------------------------------------------------------

# Debian's chromium first (.ci/run installs it); GitHub's Ubuntu runners carry Chrome.
BROWSERS = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
CHROMIUM = next(
    (found for found in map(shutil.which, BROWSERS) if found),
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None,
)


def chromium() -> str:
    """The browser; CI must have it (.ci/run installs it), a laptop may not."""
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(
            "no chromium in CI: .ci/run installs Debian's (apt-get install -y chromium);"
            " the report's browser check cannot be skipped there"
        )
    pytest.skip(
        "no chromium on this machine: the report's browser check needs it"
        " (Debian: `apt-get install -y chromium`; .ci/run installs it)"
    )


def browse(page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Opens a local page in headless chromium, offline: its proxy is a closed port."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1200,3000",
            *mode,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def drawn(page: Page) -> dict[str, tuple[int, int]]:
    """Element id -> (width, height) as the browser laid it out (``data-drawn``)."""
    sizes = {}
    for _, attrs in page.tags:
        if "data-drawn" in attrs and "id" in attrs:
            width, height = attrs["data-drawn"].split("x")
            sizes[attrs["id"]] = (int(width), int(height))
    return sizes


def check_in_browser(html_file: Path, tmp: Path, png: Path) -> Page:
    """Draws the page in chromium; fails when a section or a chart did not render."""
    dumped = browse(html_file, tmp, "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    page = Page(dumped.stdout)
    root = page.tags[0][1] if page.tags and page.tags[0][0] == "html" else {}
    assert root.get("data-measured") == "yes", "the page's measuring script did not run"
    assert not root.get("data-blocked"), f"the page tried to load: {root.get('data-blocked')}"
    sizes = drawn(page)
    charts = [a["id"] for a in page.all("svg") if a.get("class") == "chart"]
    for ident in [*SECTION_IDS, *charts]:
        width, height = sizes.get(ident, (0, 0))
        assert width > 0 and height > 0, f"#{ident} was not drawn ({width}x{height})"
    shot = browse(html_file, tmp, f"--screenshot={png}")
    assert shot.returncode == 0 and png.stat().st_size > 10_000, shot.stderr[-2000:]
    return page


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_the_report_renders_in_a_real_browser_offline(
    vertex_on_fake_clock: VertexStandIn,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chromium()
    vertex = vertex_on_fake_clock
    predictions = [
        {
            "inputs": {"inputs_pretokenized": f"Summarize: the post number {n} {HOSTILE}"},
            "prediction": f"A short summary of post {n}.",
        }
        for n in range(5)
    ]
    series = {
        "rank_loss": [(s, round(0.7 * 0.97**s, 4)) for s in range(200)],
        "accuracy": [(s, round(0.5 + 0.002 * s, 4)) for s in range(200)],
    }
    add_succeeded_run(vertex, tmp_path, "run-shown", predictions, {"team": HOSTILE}, series)
    clock.t = 10_000.0
    monkeypatch.chdir(tmp_path)
    assert cli.main(report_args(vertex, "run-shown")) == 0
    html_file = tmp_path / "runs" / "run-shown.html"
    png = tmp_path / "run-shown.png"
    page = check_in_browser(html_file, tmp_path, png)
    charts = [a["id"] for a in page.all("svg") if a.get("class") == "chart"]
    assert charts == ["timeline-chart", "chart-0", "chart-1", "chart-2"]
    # What the browser shows of hostile text is the text (its DOM holds no element of it).
    assert HOSTILE_TASK not in page.visible and "alert('x')" in page.visible
    assert len(page.all("script")) == 2 and page.all("img") == []


@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_a_failed_report_renders_in_a_real_browser_too(
    vertex_on_fake_clock: VertexStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    chromium()
    vertex = vertex_on_fake_clock
    fields = {"runtimeConfig": {"parameterValues": PARAMETERS}}
    message = HOSTILE + "CUDA out of memory" + HUGE
    vertex.add_job(f"{PARENT}/run-failed", timeline_training_failure(message), fields=fields)
    clock.t = 1000.0
    out = tmp_path / "failed.html"
    args = report_args(vertex, "run-failed", "--output", str(out))
    assert cli.main([*args, "--metrics-log", str(tmp_path / "m.jsonl")]) == 0
    page = check_in_browser(out, tmp_path, tmp_path / "failed.png")
    assert "error[TRAINING_004]" in page.visible
    assert [a["id"] for a in page.all("svg") if a.get("class") == "chart"] == ["timeline-chart"]


def test_the_browser_check_fails_when_a_chart_is_not_drawn(tmp_path: Path) -> None:
    """The check can fail: a chart hidden by its style is caught."""
    chromium()
    found = report.report_of(
        {
            "name": f"{PARENT}/run-x",
            "state": "PIPELINE_STATE_SUCCEEDED",
            "create_time": "2026-11-27T09:00:00Z",
            "end_time": "2026-11-27T10:00:00Z",
            "job_detail": {
                "task_details": [
                    {
                        "task_id": "1",
                        "task_name": "validate-dataset",
                        "state": "SUCCEEDED",
                        "start_time": "2026-11-27T09:00:00Z",
                        "end_time": "2026-11-27T09:01:00Z",
                    }
                ]
            },
        }
    )
    page = report_html.render(found).replace(
        '<svg class="chart"', '<svg style="display:none" class="chart"'
    )
    bad = tmp_path / "bad.html"
    bad.write_text(page, encoding="utf-8")
    with pytest.raises(AssertionError, match="#timeline-chart was not drawn"):
        check_in_browser(bad, tmp_path, tmp_path / "bad.png")
    loading = report_html.render(found).replace(
        "<main>", '<main><img src="http://127.0.0.1:9/x.png">'
    )
    bad.write_text(loading, encoding="utf-8")
    with pytest.raises(AssertionError, match="the page tried to load"):
        check_in_browser(bad, tmp_path, tmp_path / "bad.png")
