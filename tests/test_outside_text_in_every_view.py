"""Hostile text from a dataset, a server or an event file is printed escaped, bounded and
literally (never as markup) by every command that shows it, and never crashes it.

Each hostile string is injected through each source a command prints: dataset file names,
keys and values (validate-data, convert-data); task names, errors, labels and output values
from the Vertex stand-in (monitor in a pipe and in its live view, runs, the final report and
error); metric names from event files (metrics, compare)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import REPO, TEST_PROJECT
from tests.standins import training
from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import Step, VertexStandIn, timeline_success
from vertex_rlhf import cli
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.status import JobStatus
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.views import live

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
HUGE = 20_000_000
# Whatever one command prints about one hostile value stays well under this.
MAX_OUTPUT = 100_000


@dataclass(frozen=True)
class Hostile:
    raw: str
    shown: str  # what a view that prints the text shows of it (escaped, literal markup)
    markup: bool = False  # rich would read it as markup


HOSTILE = {
    "csi": Hostile("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
    "osc8-link": Hostile(
        "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07", "\\x1b]8;;http://evil.example\\x07"
    ),
    "carriage-return": Hostile("ok\rFAKE", "ok\\x0dFAKE"),
    "c1": Hostile("\x9b31m\x9d0;t\x9c", "\\x9b31m\\x9d0;t\\x9c"),
    "bidi": Hostile("abc\u202etxt\u2066", "abc\\u202etxt\\u2066"),
    "close-tag": Hostile("[/x]", "[/x]", markup=True),
    "close-all": Hostile("[/]", "[/]", markup=True),
    "link-markup": Hostile("[link=http://x]click[/link]", "[link=http://x]click", markup=True),
    "bold-markup": Hostile("[bold]loud[/bold]", "[bold]loud[/bold]", markup=True),
    "huge": Hostile("x" * HUGE, "x" * 150),
    "lone-surrogate": Hostile("a\ud800b", "a\\ud800b"),
}
VARIANTS = list(HOSTILE)
# Anything but tab and newline that a terminal acts on, or that reads text other than it is.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SGR = re.compile("\x1b\\[[0-9;]*m")


def assert_safe(output: str, hostile: Hostile | None = None) -> None:
    """No raw control character, a bounded length, and (given ``hostile``) its escaped,
    literal form present: the text was shown, not dropped."""
    found = UNSAFE.search(output)
    assert found is None, f"raw {found.group()!r} in output: {output[:300]!r}"
    assert not any("\ud800" <= c <= "\udfff" for c in output)
    assert len(output) < MAX_OUTPUT
    if hostile is not None:
        assert hostile.shown in output, output[:2000]


def escaped(text: str) -> str:
    """The escaped form a view shows of ``text`` (the oracle for file names)."""
    return "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if UNSAFE.match(c) or "\ud800" <= c <= "\udfff"
        else c
        for c in text
    )


def file_safe(raw: str) -> str:
    """The hostile text as a file name: no ``/`` or NUL, at most 200 bytes, and an undecodable
    byte (what the file system gives back as a lone surrogate) instead of a lone surrogate."""
    text = raw.replace("/", "_").replace("\x00", "_").replace("\ud800", "\udcff")
    return text[:150]


# ---- datasets: validate-data and convert-data ------------------------------------------


def hostile_dataset(folder: Path, source: str, raw: str) -> tuple[Path, Hostile | None]:
    """A prompt/chosen/rejected-shaped preference file where ``source`` holds ``raw``.

    Returns the file and what must be shown of it (None: the source is not printed).
    """
    folder.mkdir()
    good = {"input_text": "a prompt", "candidate_0": "yes", "candidate_1": "no", "choice": 0}
    rows = [good]
    name = "data.jsonl"
    shown: Hostile | None = None
    if source == "file name":
        name = file_safe(raw) + ".jsonl"
        rows = [good, {**good, "choice": 7}]  # one bad row: the file name is printed
        shown = Hostile(raw, escaped(file_safe(raw)[:100]))
    elif source == "key":
        rows = [good, {**good, raw: raw, "choice": "x"}]
    else:  # a value the validator quotes back
        rows = [good, {**good, "choice": raw}]
    path = folder / name
    path.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in rows))
    return path, shown


@pytest.mark.parametrize("source", ["file name", "key", "value"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_validate_data_shows_dataset_text_escaped(
    variant: str, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE[variant]
    path, shown = hostile_dataset(tmp_path / "in", source, hostile.raw)
    before = path.read_bytes()
    assert cli.main(["validate-data", "--path", str(path), "--kind", "preference"]) == 15
    captured = capsys.readouterr()
    assert_safe(captured.out + captured.err, shown)
    if source == "value" and hostile.markup:
        assert hostile.raw[:40] in captured.out  # quoted back as it is
    # --json stays JSON, clean as ever.
    assert cli.main(["validate-data", "--path", str(path), "--kind", "preference", "--json"]) == 15
    out = capsys.readouterr().out
    assert_safe(out if len(out) < MAX_OUTPUT else "")
    assert json.loads(out)["valid"] is False
    assert path.read_bytes() == before  # the source is never modified


@pytest.mark.parametrize("source", ["file name", "key", "value"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_convert_data_shows_dataset_text_escaped(
    variant: str, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE[variant]
    folder = tmp_path / "in"
    folder.mkdir()
    name = file_safe(hostile.raw) + ".jsonl" if source == "file name" else "data.jsonl"
    row = {"prompt": "p", "chosen": "a", "rejected": "b"}
    bad = {"prompt": "", "chosen": "a", "rejected": "b"}  # the error names file and line
    if source == "key":
        bad = {**bad, hostile.raw: hostile.raw}
    elif source == "value":
        bad = {**bad, "chosen": hostile.raw, "rejected": 5}
    path = folder / name
    path.write_text(json.dumps(row) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(["convert-data", "--kind", "preference", str(path), str(out)]) == 15
    captured = capsys.readouterr()
    shown = None
    if source == "file name":
        shown = Hostile(hostile.raw, escaped(file_safe(hostile.raw)[:100]))
    assert_safe(captured.out + captured.err, shown)
    assert not out.exists()


# ---- Vertex: monitor (pipe and live view), final report and error, runs ---------------


def failed_job(source: str, raw: str) -> list[Step]:
    """A job that has failed at its first read, with ``raw`` in ``source``."""
    task = raw if source == "task name" else "reward-model-trainer"
    error = raw if source == "task error" else "the trainer failed"
    errors = {} if source == "job error" else {task: error}  # the job's error is the one shown
    outputs = {"compute-steps": {"reward_model_train_steps": 1410}}
    if source == "output value":
        outputs["compute-steps"]["model_resource_name"] = raw
    return [
        Step(
            0,
            "PIPELINE_STATE_FAILED",
            {"rlhf-tuning": "FAILED", "compute-steps": "SUCCEEDED", task: "FAILED"},
            errors=errors,
            outputs=outputs,
            job_error=raw if source == "job error" else "The DAG failed.",
        )
    ]


MONITOR_SOURCES = ["task name", "task error", "output value", "job error"]
# Protocol buffers cannot hold a lone surrogate: an event file never carries one, and an API
# answer that does is a malformed answer (refused by the client before any view sees it).
PROTO_VARIANTS = [v for v in VARIANTS if v != "lone-surrogate"]


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("source", MONITOR_SOURCES)
@pytest.mark.parametrize("variant", PROTO_VARIANTS)
def test_monitor_in_a_pipe_shows_server_text_escaped(
    variant: str,
    source: str,
    vertex: VertexStandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hostile = HOSTILE[variant]
    vertex.add_job(f"{PARENT}/rlhf-tuning-dev-x", failed_job(source, hostile.raw))
    args = ["monitor", "rlhf-tuning-dev-x", "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}"]
    args += ["--poll-interval", "0.05", "--metrics-log", str(tmp_path / "m.jsonl")]
    assert cli.main(args) == 14  # TRAINING_004
    captured = capsys.readouterr()
    assert_safe(captured.out, hostile)
    assert_safe(captured.err)
    assert "error[TRAINING_004]" in captured.err
    if source != "output value":  # the final error quotes the failed task and why
        assert hostile.shown in captured.err
    # The metrics log is JSON: it holds the text whole, escaped by JSON.
    logged = (tmp_path / "m.jsonl").read_text(encoding="utf-8")
    assert_safe(logged[:MAX_OUTPUT])


def live_screen(status: JobStatus) -> tuple[str, str]:
    """The live view drawn once on a terminal: (what the terminal got, the text it shows)."""
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, record=True, width=400)
    view = live.MonitorView(f"{PARENT}/rlhf-tuning-dev-x", None)
    view.update(status)
    console.print(view)
    return stream.getvalue(), console.export_text()


@pytest.mark.parametrize("source", ["task name", "output value"])
@pytest.mark.parametrize("variant", PROTO_VARIANTS)
def test_live_view_shows_server_text_literally(
    variant: str, source: str, vertex: VertexStandIn
) -> None:
    hostile = HOSTILE[variant]
    task = hostile.raw if source == "task name" else "reward-model-trainer"
    outputs = {"compute-steps": {"reward_model_train_steps": 1410}}
    if source == "output value":
        outputs["compute-steps"]["note"] = hostile.raw
    running = {"rlhf-tuning": "RUNNING", "compute-steps": "SUCCEEDED", task: "RUNNING"}
    steps = [Step(0, "PIPELINE_STATE_RUNNING", running, outputs=outputs)]
    vertex.add_job(f"{PARENT}/rlhf-tuning-dev-x", steps)
    watcher = monitor.PipelineMonitor(VertexTarget(TEST_PROJECT, "us-central1", vertex.url))
    status = watcher.get_status("rlhf-tuning-dev-x")
    terminal, text = live_screen(status)
    assert_safe(text, hostile)
    # The terminal gets colours from us and nothing else: no link, no screen clearing.
    assert_safe(SGR.sub("", terminal))
    assert "\x1b]8" not in terminal


@pytest.mark.parametrize("variant", VARIANTS)
def test_live_view_shows_metric_names_from_the_log_literally(variant: str, tmp_path: Path) -> None:
    hostile = HOSTILE[variant]
    log = tmp_path / "m.jsonl"
    point = {"stage": "reward_model", "metrics": {hostile.raw: 0.5, "step": 3}}
    log.write_text(json.dumps(point) + "\n", encoding="utf-8")
    view = live.MonitorView(f"{PARENT}/rlhf-tuning-dev-x", log)
    view.update(monitor.job_status({"name": "x", "state": "PIPELINE_STATE_RUNNING"}))
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, record=True, width=400)
    console.print(view)
    assert_safe(console.export_text(), hostile)
    assert_safe(SGR.sub("", stream.getvalue()))


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("label", ["pipeline-version", "environment"])
@pytest.mark.parametrize("variant", PROTO_VARIANTS)
def test_runs_lists_labels_escaped(
    variant: str, label: str, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE[variant]
    labels = {"pipeline": "rlhf-tuning", "pipeline-version": "1-0-0", "environment": "dev"}
    vertex.add_job(
        f"{PARENT}/rlhf-tuning-dev-x", timeline_success(), {**labels, label: hostile.raw}
    )
    assert cli.main(["runs", "dev", f"vertex_ai.api_endpoint={vertex.url}"]) == 0
    captured = capsys.readouterr()
    assert_safe(captured.out, hostile)
    assert "rlhf-tuning-dev-x" in captured.out


# ---- event files: metrics and compare -------------------------------------------------


@pytest.mark.usefixtures("project_env", "storage_emulator")
@pytest.mark.parametrize("variant", PROTO_VARIANTS)
def test_metrics_and_compare_show_metric_names_escaped(
    variant: str, vertex: VertexStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE[variant]
    if variant == "huge":  # TensorBoard's pure-Python CRC takes ~5 s a MB, written and read
        hostile = Hostile("x" * 200_000, hostile.shown)
    bucket = f"rlhf-hostile-{uuid.uuid4().hex[:10]}"
    timeline, uris = training.run_timeline(0.0036, bucket, "rlhf-tuning-dev-m")
    vertex.add_job(f"{PARENT}/rlhf-tuning-dev-m", timeline)
    series = {hostile.raw: [(step, 0.5 - 0.01 * step) for step in range(5)]}
    training.publish_events(tmp_path / "rm", uris["reward-model-trainer"], series)
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"
    png = tmp_path / "m.png"
    args = ["metrics", "rlhf-tuning-dev-m", "--env", "dev", endpoint, "--png", str(png)]
    assert cli.main([*args, "--metrics-log", str(tmp_path / "m.jsonl")]) == 0
    captured = capsys.readouterr()
    assert_safe(captured.out, hostile)
    assert_safe(captured.err)
    assert png.is_file()
    compared = tmp_path / "c.png"
    args = ["compare", "rlhf-tuning-dev-m", "--env", "dev", endpoint, "--png", str(compared)]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert_safe(captured.out, hostile)
    assert compared.is_file()


# ---- log records ------------------------------------------------------------------------


def test_log_records_of_the_cli_are_escaped_and_bounded(tmp_path: Path) -> None:
    """What a library or the SDK logs (quoting a server or a file) goes out through the
    CLI's log handler escaped and bounded, like every printed line."""
    texts = tmp_path / "hostile.json"
    texts.write_text(json.dumps([h.raw for h in HOSTILE.values()]), encoding="utf-8")
    probe = (
        "import json, logging, sys\n"
        "from vertex_rlhf.cli import main\n"
        "main(['steps', 'dev'])\n"
        "print('---', file=sys.stderr, flush=True)\n"
        "for text in json.load(open(sys.argv[1])):\n"
        "    logging.getLogger('google.cloud.storage').warning('object %s: gone', text)\n"
        "    print('---', file=sys.stderr, flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(texts)],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="strict",
        timeout=120,
        check=True,
    )
    records = result.stderr.split("---\n")[1:-1]
    assert len(records) == len(HOSTILE)
    for record, hostile in zip(records, HOSTILE.values(), strict=True):
        assert record.startswith("WARNING object ")
        assert_safe(record, hostile)
        assert len(record) < 25_000


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("variant", VARIANTS)
def test_progress_bars_show_file_names_literally(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = HOSTILE[variant]
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv(live.MIN_BYTES_VARIABLE, "0")
    screen = FakeTerminal()
    with live.read_progress(screen) as bars:
        assert bars is not None
        bars.start(f"gs://bucket/{hostile.raw}.jsonl", 1000)
        bars.advance(500, 10)
        bars.progress.refresh()
    # Colours, cursor movement and carriage returns are the bar's own; nothing else reaches
    # the terminal, and the end of the name (where the file name is) shows as it is.
    drawn = re.sub("\x1b\\[[0-9;?]*[A-Za-z]|\r", "", screen.getvalue())
    assert_safe(drawn)
    assert "\x1b]8" not in screen.getvalue()
    assert escaped(f"{hostile.raw[-20:]}.jsonl")[-16:] in drawn


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("variant", PROTO_VARIANTS)
def test_versions_lists_registry_tags_escaped(
    variant: str,
    registry_standin: RegistryStandIn,
    compiled_copy: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hostile = HOSTILE[variant]
    args = [
        "dev",
        f"vertex_ai.template_registry={registry_standin.url}",
        "--compiled-dir",
        str(compiled_copy),
    ]
    assert cli.main(["publish", *args]) == 0
    capsys.readouterr()
    (entry,) = registry_standin.packages.values()
    tag = hostile.raw.replace("/", "_")  # a tag is one segment of a URL path
    entry["tags"][tag] = entry["order"][0]  # a tag someone else made
    assert cli.main(["versions", *args]) == 0
    captured = capsys.readouterr()
    assert_safe(captured.out, Hostile(tag, escaped(tag[:150])[:150]))
    assert "latest" in captured.out
