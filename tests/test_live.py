"""Live progress: a live run view and read progress bars on a terminal, plain lines elsewhere.

The CLI runs in a real pseudo-terminal (``pty``) and through a pipe, against the Vertex
stand-in; the view and the bars are also rendered in-process on rich's recording console.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import io
import itertools
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from tests.conftest import REPO, SAMPLES, TEST_PROJECT, before_each_piece
from tests.standins.vertex import VertexStandIn, scale, timeline_success
from vertex_rlhf.cloud import monitor
from vertex_rlhf.cloud.status import JobStatus, parse_time
from vertex_rlhf.data import convert as convert_module
from vertex_rlhf.data import files
from vertex_rlhf.data.progress import REPORT_EVERY, counted
from vertex_rlhf.views import live

JOB = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-live"
ESC = "\x1b["
HIDE_CURSOR = "\x1b[?25l"


def child_env(**extra: str) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "COLUMNS", "LINES")
    }
    environ.update(GOOGLE_CLOUD_PROJECT=TEST_PROJECT, TERM="xterm-256color", **extra)
    return environ


def in_terminal(args: list[str], timeout: float = 120, **env: str) -> tuple[int, str]:
    """Runs ``rlhf ARGS`` with stdout and stderr on a 120x40 pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "vertex_rlhf", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        cwd=REPO,
        env=child_env(**env),
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError as error:  # the child closed the terminal
                if error.errno == errno.EIO:
                    break
                raise
            if not data:
                break
            chunks.append(data)
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return status, b"".join(chunks).decode("utf-8", "replace")


def plain(screen: str) -> str:
    """The screen's text without colours and cursor movement."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)


def in_pipe(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``rlhf ARGS`` as CI does: output to pipes."""
    return subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env(**env),
        timeout=120,
    )


def large_preference_file(path: Path, rows: int = 12_000) -> Path:
    """About 3 MB of valid preference rows."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            row = {
                "input_text": f"SUBREDDIT: r/test\nTITLE: question {i}\nPOST: " + "words " * 30,
                "candidate_0": f"first answer {i}",
                "candidate_1": f"second answer {i}",
                "choice": i % 2,
            }
            handle.write(json.dumps(row) + "\n")
    return path


def raw_preference_file(path: Path, rows: int = 12_000) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            row = {"prompt": f"question {i} " + "words " * 30, "chosen": "yes", "rejected": "no"}
            handle.write(json.dumps(row) + "\n")
    return path


# --- counting, in the data wing ---------------------------------------------------------


class Recorder:
    """A progress sink that records what it is told (thread-safe, like the real one)."""

    def __init__(self) -> None:
        self.starts: list[tuple[str, int]] = []
        self.bytes = 0
        self.rows = 0
        self.calls = 0
        self.steps: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def start(self, label: str, total_bytes: int) -> None:
        self.starts.append((label, total_bytes))

    def advance(self, nbytes: int, rows: int) -> None:
        with self.lock:
            self.bytes += nbytes
            self.rows += rows
            self.calls += 1
            self.steps.append((nbytes, rows))


@pytest.mark.parametrize("trailing_newline", [True, False])
@pytest.mark.parametrize("with_newlines", [True, False])
def test_counting_matches_the_file_size_and_non_blank_rows(
    trailing_newline: bool, with_newlines: bool
) -> None:
    text = b'{"a": 1}\n\n{"a": 2}\r\n{"a": 3}' + (b"\n" if trailing_newline else b"")
    if with_newlines:  # as iterating a local file gives them
        lines = io.BytesIO(text).readlines()
    else:  # as files.block_lines gives them for Cloud Storage
        lines = list(files.block_lines(io.BytesIO(text)))
    sink = Recorder()
    assert list(counted(lines, sink, len(text))) == lines
    assert (sink.bytes, sink.rows) == (len(text), 3)


def test_counting_reports_in_batches_and_costs_nothing_without_a_sink() -> None:
    lines = [b"x" * 1023 + b"\n"] * 3000  # ~3 MB
    sink = Recorder()
    list(counted(lines, sink, 1024 * 3000))
    assert sink.bytes == 1024 * 3000 and sink.rows == 3000
    assert 2 <= sink.calls <= 1024 * 3000 // REPORT_EVERY + 1
    plain = iter(lines)
    assert counted(plain, None) is plain


def test_validate_tells_the_total_then_every_byte_and_row(tmp_path: Path) -> None:
    first = large_preference_file(tmp_path / "a.jsonl", 3000)
    second = large_preference_file(tmp_path / "b.jsonl", 2000)
    sink = Recorder()
    report = files.validate(str(tmp_path / "*.jsonl"), "preference", progress=sink)
    size = first.stat().st_size + second.stat().st_size
    assert sink.starts == [(str(tmp_path / "*.jsonl"), size)]
    assert (sink.bytes, sink.rows) == (size, report["rows"]) == (size, 5000)


@pytest.mark.parametrize("late", ["this process", "the other process"])
def test_a_dataset_read_in_parallel_tells_progress_as_every_process_reads(
    late: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forked readers count into shared memory: the bar moves during the read, not at the
    end, with the other process's bytes in it, and ends exactly on the size and rows."""
    from vertex_rlhf.data import parallel

    big = large_preference_file(tmp_path / "big.jsonl", 40_000)  # ~10 MB
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1)
    forks: list[int] = []
    run_forked = parallel.run_forked
    monkeypatch.setattr(
        parallel, "run_forked", lambda task, n: forks.append(n) or run_forked(task, n)
    )

    def wait() -> None:  # one process starts once the other has read its share
        time.sleep(1.0)

    if late == "this process":
        before_each_piece(monkeypatch, here=wait)
    else:
        before_each_piece(monkeypatch, in_workers=wait)
    sink = Recorder()
    report = files.validate(str(big), "preference", progress=sink, processes=2)
    size = big.stat().st_size
    assert forks == [2] and report["rows"] == 40_000 and not report["errors"]
    assert (sink.bytes, sink.rows) == (size, 40_000)
    assert sink.calls > 20  # one per block read (128 KiB), not one at the end
    assert sink.steps[-1] == (0, 0)  # the readers told every byte and row themselves
    if late == "this process":  # the other's whole share came with this one's first block
        assert sink.steps[0][0] > size // 3 and sink.steps[0][1] > 40_000 // 3
    else:  # this one's share first, block by block; the other's once it has answered
        assert sink.steps[0][0] < size // 10 and sink.steps[-2][0] > size // 3


def test_a_dataset_read_again_after_a_dead_worker_is_not_counted_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = large_preference_file(tmp_path / "big.jsonl", 40_000)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1)
    before_each_piece(monkeypatch, in_workers=lambda: os._exit(3))
    sink = Recorder()
    report = files.validate(str(big), "preference", progress=sink, processes=2)
    size = big.stat().st_size
    assert report["rows"] == 40_000 and not report["errors"]
    assert (sink.bytes, sink.rows) == (size, 40_000)
    assert max(itertools.accumulate(step[0] for step in sink.steps)) == size
    assert min(step[0] for step in sink.steps) >= 0


def test_validate_counts_cloud_storage_reads_too(storage_emulator: str, tmp_path: Path) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    source = large_preference_file(tmp_path / "p.jsonl", 2500)
    client = storage.Client(project="emulator", credentials=AnonymousCredentials())
    bucket = client.create_bucket("rlhf-live-progress")
    bucket.blob("prefs/p.jsonl").upload_from_filename(str(source))
    sink = Recorder()
    report = files.validate("gs://rlhf-live-progress/prefs/*.jsonl", "preference", progress=sink)
    assert not report["errors"]
    assert sink.starts[0][1] == source.stat().st_size
    assert (sink.bytes, sink.rows) == (source.stat().st_size, 2500)


def test_convert_tells_the_input_size_and_rows(tmp_path: Path) -> None:
    source = raw_preference_file(tmp_path / "raw.jsonl", 4000)
    sink = Recorder()
    stats = convert_module.convert(
        str(source), str(tmp_path / "out.jsonl"), "preference", progress=sink
    )
    assert sink.starts == [(str(source), source.stat().st_size)]
    assert (sink.bytes, sink.rows) == (source.stat().st_size, stats.read) == (sink.bytes, 4000)


# --- the bars and the view, rendered ---------------------------------------------------


def recording_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=140, record=True)


def test_bars_only_for_inputs_above_the_threshold() -> None:
    console = recording_console()
    progress = Progress(*Progress.get_default_columns(), console=console, auto_refresh=False)
    bars = live.ReadBars(progress, min_bytes=1000)
    bars.start("small.jsonl", 999)
    bars.advance(999, 10)
    assert progress.tasks == []
    bars.start("large.jsonl", 5000)
    threads = [threading.Thread(target=bars.advance, args=(1000, 7)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [task] = progress.tasks
    assert (task.description, task.total, task.completed) == ("large.jsonl", 5000, 5000)
    assert task.fields["rows"] == 35


def status_at(seconds: float) -> JobStatus:
    """The stand-in's job, ``seconds`` into a one-hour run, as the monitor summarizes it."""
    from google.cloud.aiplatform_v1 import PipelineJob

    clock = {"t": 0.0}
    vertex = VertexStandIn(clock=lambda: clock["t"])  # its view only: never started
    vertex.add_job(JOB, timeline_success(3600.0))
    clock["t"] = seconds
    resource = PipelineJob.from_json(json.dumps(vertex.view(vertex.jobs[JOB])))
    now = parse_time(vertex.stamp(seconds))
    assert now is not None
    status = monitor.job_status(PipelineJob.to_dict(resource, use_integers_for_enums=False), now)
    return dataclasses.replace(status, console_url="https://console.example/run")


def render(view: live.MonitorView) -> str:
    console = recording_console()
    console.print(view)
    return console.export_text()


def test_view_shows_stages_running_tasks_elapsed_time_and_latest_metrics(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    log.write_text(
        json.dumps({"stage": "pipeline", "metrics": {"state": "RUNNING", "progress": 5}})
        + "\n"
        + json.dumps({"stage": "reward_model", "metrics": {"rank_loss": 0.6931, "step": 10}})
        + "\n",
        encoding="utf-8",
    )
    clock = {"t": 100.0}
    view = live.MonitorView(JOB, log, clock=lambda: clock["t"])
    assert "Waiting for the first status" in render(view)
    view.update(status_at(600.0))  # the reward model is training
    text = render(view)
    assert "rlhf-tuning-dev-live" in text and "RUNNING" in text
    assert "elapsed 10m 00s" in text
    assert "validation" in text and "✔ succeeded" in text
    assert "● running" in text and "reward-model-trainer" in text
    assert "· pending" in text  # reinforcement learning has not started
    assert "reward_model" in text and "step 10" in text and "rank_loss 0.6931" in text
    assert "reward_model_train_steps 1410" in text  # compute-steps' outputs
    assert "state RUNNING" not in text  # task-state records are not metrics
    # Time ticks between polls, for the job and its running tasks.
    clock["t"] = 165.0
    text = render(view)
    assert "elapsed 11m 05s" in text
    # New points appended to the log appear with the next status; half-written lines wait.
    with log.open("a", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"stage": "reward_model", "metrics": {"rank_loss": 0.5, "step": 20}})
        )
        handle.write("\n" + '{"stage": "reward_model", "metr')
    view.update(status_at(700.0))
    text = render(view)
    assert "step 20" in text and "rank_loss 0.5" in text
    # The monitor's own lines (an API error, say) show as the footer.
    print("  API error (ServiceUnavailable); retrying in 15s", file=view.notes)
    assert "API error (ServiceUnavailable); retrying in 15s" in render(view)


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("  API error (ServiceUnavailable); retrying in 15s", True),
        ("  API error (DeadlineExceeded)", True),
        ("  state UNKNOWN(42) is unknown to this client; watching it for at most 1800s", True),
        ("  metrics: cannot read the event files yet (Forbidden: 403 ...)", True),
        ("  something new the monitor says\x1b[2J", True),
        ("[10m 00s] RUNNING     45% reward model: reward-model-trainer", False),
        ("  metrics: +3 step(s); reward_model: rank_loss 0.5, step 20", False),
    ],
)
def test_the_monitors_warnings_stay_on_the_terminal_above_the_view(line: str, kept: bool) -> None:
    console = recording_console()
    view = live.MonitorView(JOB, None, console=console)
    print(line, file=view.notes)
    above = console.export_text()
    assert (line.strip().replace("\x1b", "\\x1b") in above) is kept
    assert "\x1b" not in above
    assert view.notes.last == line.strip().replace("\x1b", "\\x1b")  # the footer, either way


def test_view_stops_the_clock_when_the_run_ends() -> None:
    clock = {"t": 0.0}
    view = live.MonitorView(JOB, None, clock=lambda: clock["t"])
    view.update(status_at(3600.0))
    clock["t"] = 500.0
    text = render(view)
    assert "SUCCEEDED" in text and "100%" in text and "elapsed 1h 00m" in text
    assert "● running" not in text


def test_off_a_terminal_nothing_is_drawn() -> None:
    stream = io.StringIO()
    with live.monitor_display(JOB, None, stream) as display:
        assert display.callback is None
    with live.read_progress(stream) as bars:
        assert bars is None
    assert stream.getvalue() == ""
    # Off a terminal the monitor's lines go to the stream as they are, escaped.
    with live.monitor_display(JOB, None, stream) as display:
        print("  API error (ServiceUnavailable)\x1b[2J", file=display.out)
    assert stream.getvalue() == "  API error (ServiceUnavailable)\\x1b[2J\n"


def test_a_terminal_is_one_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setenv("TERM", "xterm")
        assert live.interactive(terminal)
        monkeypatch.setenv("TERM", "dumb")
        assert not live.interactive(terminal)
    os.close(master)
    monkeypatch.setenv("FORCE_COLOR", "1")  # forces colour, not a terminal
    assert not live.interactive(io.StringIO())


# --- the CLI, on a terminal and in a pipe ----------------------------------------------


def test_validate_data_draws_a_bar_on_a_terminal_for_a_large_input(tmp_path: Path) -> None:
    data = large_preference_file(tmp_path / "prefs.jsonl")
    args = ["validate-data", "--path", str(data), "--kind", "preference"]
    status, screen = in_terminal(args, RLHF_PROGRESS_MIN_BYTES="1000000")
    assert status == 0, screen
    assert HIDE_CURSOR in screen
    megabytes = f"{data.stat().st_size / 1e6:.1f}"
    assert f"{megabytes}/{megabytes} MB" in plain(screen) and "12,000 rows" in plain(screen)
    assert "12000 rows in 1 file(s)" in screen and "valid" in screen


def test_validate_data_in_a_pipe_prints_plain_lines(tmp_path: Path) -> None:
    data = large_preference_file(tmp_path / "prefs.jsonl")
    args = ["validate-data", "--path", str(data), "--kind", "preference"]
    # Even when the environment asks for colour: CI's log gets no bar and no escapes.
    result = in_pipe(args, RLHF_PROGRESS_MIN_BYTES="0", FORCE_COLOR="1", TTY_COMPATIBLE="1")
    assert result.returncode == 0, result.stderr
    assert ESC not in result.stdout + result.stderr
    assert "rows" not in result.stderr and "MB" not in result.stderr
    assert "12000 rows in 1 file(s)" in result.stdout


def test_small_inputs_get_no_bar_even_on_a_terminal() -> None:
    args = ["validate-data", "--path", str(SAMPLES / "preference.jsonl"), "--kind", "preference"]
    status, screen = in_terminal(args)
    assert status == 0, screen
    assert HIDE_CURSOR not in screen and "MB" not in screen
    assert "160 rows in 1 file(s)" in screen


def test_convert_data_draws_a_bar_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    raw = raw_preference_file(tmp_path / "raw.jsonl")
    args = ["convert-data", str(raw), str(tmp_path / "out.jsonl"), "--kind", "preference"]
    status, screen = in_terminal(args, RLHF_PROGRESS_MIN_BYTES="1000000")
    assert status == 0, screen
    assert HIDE_CURSOR in screen and "12,000 rows" in plain(screen) and "MB" in plain(screen)
    assert "read 12000 rows; wrote 12000" in screen
    result = in_pipe([*args, "--force"], RLHF_PROGRESS_MIN_BYTES="0")
    assert result.returncode == 0, result.stderr
    assert ESC not in result.stdout + result.stderr and "MB" not in result.stderr
    assert "read 12000 rows; wrote 12000" in result.stdout


def monitor_args(vertex: VertexStandIn, log: Path) -> list[str]:
    return [
        "monitor",
        JOB,
        "--env",
        "dev",
        f"vertex_ai.api_endpoint={vertex.url}",
        "--poll-interval",
        "0.2",
        "--metrics-log",
        str(log),
    ]


def seeded_log(path: Path) -> Path:
    """A metrics log that already holds a training point, as the metrics follower writes."""
    point = {"stage": "reward_model", "job_id": JOB, "metrics": {"rank_loss": 0.4321, "step": 7}}
    path.write_text(json.dumps(point) + "\n", encoding="utf-8")
    return path


class FromFirstPoll:
    """A stand-in clock that starts when the CLI first asks (its start-up time varies)."""

    def __init__(self) -> None:
        self.vertex: VertexStandIn | None = None
        self.started: float | None = None

    def __call__(self) -> float:
        if self.started is None:
            if self.vertex is None or not self.vertex.requests:
                return 0.0
            self.started = time.monotonic()
        return time.monotonic() - self.started


@pytest.fixture
def polled_vertex() -> Iterator[VertexStandIn]:
    """The stand-in with a 5.4 s successful run that begins at the first poll."""
    clock = FromFirstPoll()
    vertex = VertexStandIn(clock=clock)
    clock.vertex = vertex
    vertex.origin = datetime.now(timezone.utc)  # real timestamps, for real elapsed times
    vertex.add_job(JOB, scale(timeline_success(3600.0), 0.0015))
    vertex.start()
    yield vertex
    vertex.stop()


def test_monitor_shows_a_live_view_on_a_terminal(
    polled_vertex: VertexStandIn, tmp_path: Path
) -> None:
    vertex = polled_vertex
    status, screen = in_terminal(monitor_args(vertex, seeded_log(tmp_path / "m.jsonl")))
    assert status == 0, screen
    assert HIDE_CURSOR in screen
    assert "running tasks" in screen and "● running" in screen
    assert "reward-model-trainer" in screen and "elapsed" in screen
    assert "rank_loss 0.4321" in screen and "step 7" in screen
    # Drawn in place: the cursor goes back up over the view to redraw it.
    assert "\x1b[1A" in screen and "\x1b[?25h" in screen
    # Then the final report, as in a pipe.
    assert f"Pipeline job {JOB}: SUCCEEDED (100%" in screen


def test_monitor_prints_plain_lines_in_a_pipe(polled_vertex: VertexStandIn, tmp_path: Path) -> None:
    vertex = polled_vertex
    result = in_pipe(monitor_args(vertex, seeded_log(tmp_path / "m.jsonl")), FORCE_COLOR="1")
    assert result.returncode == 0, result.stderr
    assert ESC not in result.stdout + result.stderr
    assert "running tasks" not in result.stdout
    assert "RUNNING" in result.stdout and "reward model: reward-model-trainer" in result.stdout
    assert f"Pipeline job {JOB}: SUCCEEDED (100%" in result.stdout


def test_monitor_on_a_terminal_keeps_the_api_errors_a_pipe_prints(
    polled_vertex: VertexStandIn, tmp_path: Path
) -> None:
    vertex = polled_vertex
    vertex.fail_next(2, 503)
    args = monitor_args(vertex, tmp_path / "m.jsonl")
    status, screen = in_terminal(args)
    assert status == 0, screen
    assert HIDE_CURSOR in screen
    shown = plain(screen)
    assert shown.count("API error (ServiceUnavailable); retrying in") >= 2
    assert f"Pipeline job {JOB}: SUCCEEDED (100%" in shown


@pytest.mark.parametrize("command", [["steps", "dev"], ["check", "dev"]])
def test_fast_commands_do_not_import_rich(command: list[str]) -> None:
    probe = (
        "import sys\n"
        "from vertex_rlhf.cli import main\n"
        f"status = main({command!r})\n"
        "print('RICH', sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')"
        " or m == 'vertex_rlhf.views.live'))\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "RICH []" in result.stdout
