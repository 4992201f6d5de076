"""What a person sees on a terminal: a live view of a run, progress bars for long reads.

Drawn with ``rich``, and only on a terminal: to a pipe, a file or CI's log the commands
print their plain lines as before (``FORCE_COLOR`` and the like do not change that).
Only the commands that draw import this module, so ``rlhf steps`` and ``check`` stay fast.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from vertex_rlhf.views.text import duration, outside
from vertex_rlhf.views.text import name as outside_name

if TYPE_CHECKING:
    from vertex_rlhf.cloud.status import JobStatus

# Inputs smaller than this are read before a bar would be worth drawing.
PROGRESS_MIN_BYTES = 16 * 1024 * 1024
MIN_BYTES_VARIABLE = "RLHF_PROGRESS_MIN_BYTES"
TERMINAL_STATES = {"SUCCEEDED", "FAILED", "CANCELLED"}
_STAGE_STYLE = {
    "succeeded": ("✔", "green"),
    "running": ("●", "cyan"),
    "failed": ("✖", "red"),
    "cancelled": ("✖", "yellow"),
    "skipped": ("-", "dim"),
    "not run": ("-", "dim"),
    "pending": ("·", "dim"),
}


def interactive(stream: IO[str]) -> bool:
    """True when ``stream`` is a terminal that understands cursor movement."""
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty and isatty())
    except ValueError:  # closed
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def progress_min_bytes() -> int:
    """The smallest input that gets a bar (``RLHF_PROGRESS_MIN_BYTES`` overrides it)."""
    value = os.environ.get(MIN_BYTES_VARIABLE, "")
    return int(value) if value.isdigit() else PROGRESS_MIN_BYTES


class ReadBars:
    """A ``data.progress.ProgressSink`` that draws one bar per large dataset read.

    Args:
        progress: the rich progress display the bars go into.
        min_bytes: datasets smaller than this get no bar.
    """

    def __init__(self, progress: Progress, min_bytes: int) -> None:
        self.progress = progress
        self.min_bytes = min_bytes
        self._task: TaskID | None = None
        self._rows = 0
        self._lock = threading.Lock()
        self.started = False

    def start(self, label: str, total_bytes: int) -> None:
        with self._lock:
            self._rows = 0
            self._task = None
            if total_bytes >= self.min_bytes:
                if not self.started:  # nothing is drawn until a large input comes
                    self.progress.start()
                    self.started = True
                # The description column reads markup: the file name is escaped for it.
                description = escape(outside_name(_shortened(label)))
                self._task = self.progress.add_task(description, total=total_bytes, rows=0)

    def advance(self, nbytes: int, rows: int) -> None:
        with self._lock:
            if self._task is None:
                return
            self._rows += rows
            self.progress.update(self._task, advance=nbytes, rows=self._rows)


def _shortened(label: str, width: int = 40) -> str:
    """Keeps the end of a long path, where the file name is."""
    return label if len(label) <= width else "..." + label[-(width - 3) :]


@contextmanager
def read_progress(stream: TextIO | None = None) -> Iterator[ReadBars | None]:
    """Progress bars (bytes and rows) for long dataset reads, on a terminal only.

    Args:
        stream: where bars are drawn (default stderr, so stdout stays the result).

    Yields:
        A progress sink for ``validate``/``convert``, or None off a terminal.
    """
    stream = stream or sys.stderr
    if not interactive(stream):
        yield None
        return
    console = Console(file=stream, force_terminal=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
        console=console,
        redirect_stdout=False,  # stdout carries the result; warnings on stderr go above
    )
    bars = ReadBars(progress, progress_min_bytes())
    try:
        yield bars
    finally:
        if bars.started:
            progress.stop()


# The monitor's routine lines, which the live view itself shows: a progress line
# (``[1m 05s] RUNNING  40% ...``) and the metrics follower's new points.
_ROUTINE = re.compile(r"\[[^\]]*\] |metrics: \+\d+ step")


class _Notes(io.StringIO):
    """The monitor's ``out`` under the live view: keeps the last line (escaped) for the
    view's footer, and prints every line that is not routine (an API error and its retry,
    a state this client does not know, event files it cannot read) above the view, where
    it stays after the view is gone, as in a pipe.

    Args:
        console: where lines are printed above the view (None: footer only).
    """

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self.last = ""
        self.console = console

    def write(self, text: str) -> int:
        lines = [outside_name(line.strip(), 500) for line in text.splitlines() if line.strip()]
        if lines:
            self.last = lines[-1]
        if self.console is not None:
            for line in lines:
                if not _ROUTINE.match(line):
                    self.console.print(Text(f"  {line}"))
        return len(text)


class MonitorView:
    """A rich renderable of a run: state, progress, stages, running tasks, latest metrics.

    Elapsed times tick between polls (the view is redrawn a few times a second). Every
    text from the server or the metrics log is drawn as a ``Text`` of ``views.text.name``:
    escaped, bounded, and never read as markup.

    Args:
        job: the job's resource name.
        metrics_log: the run's JSONL metrics log, read for the latest metric points.
        clock: monotonic seconds (injectable for tests).
        console: where the monitor's non-routine lines are printed above the view.
    """

    def __init__(
        self,
        job: str,
        metrics_log: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        console: Console | None = None,
    ) -> None:
        self.job = job
        self.metrics_log = metrics_log
        self.clock = clock
        self.notes = _Notes(console)
        self.status: JobStatus | None = None
        self.metrics: dict[str, dict[str, Any]] = {}  # stage -> latest point
        self._seen_at = clock()
        self._log_offset = 0
        self._lock = threading.Lock()

    def update(self, status: JobStatus) -> None:
        """The monitor's callback: takes a new status and the log's new metric points."""
        with self._lock:
            self.status = status
            self._seen_at = self.clock()
            self._read_metrics()

    def _read_metrics(self) -> None:
        if self.metrics_log is None or not self.metrics_log.is_file():
            return
        with self.metrics_log.open("rb") as log:
            log.seek(self._log_offset)
            data = log.read()
        complete = data.rfind(b"\n") + 1
        self._log_offset += complete
        for line in data[:complete].splitlines():
            try:
                record = json.loads(line)
                metrics = record["metrics"]
            except (ValueError, KeyError, TypeError):
                continue
            # Training points carry a step; task-state records do not.
            if isinstance(metrics, dict) and "step" in metrics:
                self.metrics.setdefault(str(record.get("stage")), {}).update(metrics)

    def _ticking(self, seconds: float | None, ticks: bool) -> float | None:
        """Seconds as of the last poll, plus the time since, while still counting."""
        if seconds is None or not ticks:
            return seconds
        return seconds + max(0.0, self.clock() - self._seen_at)

    def __rich__(self) -> RenderableType:
        with self._lock:
            return self._render()

    def _render(self) -> RenderableType:
        status = self.status
        short = outside_name(self.job.rsplit("/", 1)[-1])
        if status is None:
            return Text(f"Waiting for the first status of {short} ...", style="dim")
        state = outside_name(status.state)
        elapsed = self._ticking(status.elapsed_seconds, state not in TERMINAL_STATES)
        head = Table.grid(padding=(0, 2))
        head.add_row(
            Text(short, style="bold"),
            Text(state, style=_state_style(state)),
            ProgressBar(total=100, completed=status.progress, width=30),
            Text(f"{status.progress:>3}%"),
            Text(f"elapsed {duration(elapsed)}"),
        )
        parts: list[RenderableType] = [head]
        if status.console_url:
            parts.append(Text(f"console: {outside_name(status.console_url, 1000)}", style="dim"))
        parts.append(self._stages(status))
        metrics = self._metrics(status)
        if metrics is not None:
            parts.append(metrics)
        if self.notes.last:
            parts.append(Text(self.notes.last, style="dim"))
        return Group(*parts)

    def _stages(self, status: JobStatus) -> Table:
        running: dict[str, list[str]] = {}
        for task in status.tasks:
            if task.state == "RUNNING" and task.leaf:
                seconds = self._ticking(task.seconds, status.state not in TERMINAL_STATES)
                entry = f"{outside_name(task.name)} {duration(seconds)}"
                running.setdefault(task.stage or "pipeline", []).append(entry)
        table = Table(box=None, padding=(0, 2), show_edge=False)
        table.add_column("stage")
        table.add_column("state")
        table.add_column("running tasks")
        for stage, stage_state in status.stages.items():
            mark, style = _STAGE_STYLE.get(stage_state, ("?", ""))
            table.add_row(
                Text(stage),
                Text(f"{mark} {stage_state}", style=style),
                Text(", ".join(running.pop(stage, []))),
            )
        for stage, tasks in running.items():  # tasks of no known stage
            table.add_row(
                Text(outside_name(stage)), Text("● running", style="cyan"), Text(", ".join(tasks))
            )
        return table

    def _metrics(self, status: JobStatus) -> Table | None:
        rows = []
        for stage, point in self.metrics.items():
            values = "  ".join(
                f"{outside_name(key)} {_number(value)}"
                for key, value in point.items()
                if key != "step"
            )
            rows.append((stage, f"step {_number(point.get('step'))}  {values}"))
        for task, outputs in status.task_outputs.items():
            shown = {k: v for k, v in outputs.items() if v not in ("", None)}
            if shown:
                values = "  ".join(f"{outside_name(k)} {_number(v)}" for k, v in shown.items())
                rows.append((task, values))
        if not rows:
            return None
        table = Table(box=None, padding=(0, 2), show_edge=False, title_justify="left")
        table.add_column("latest metrics")
        table.add_column("")
        for label, text in rows:
            table.add_row(Text(outside_name(label)), Text(text))
        return table


def _state_style(state: str) -> str:
    return {"SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(state, "cyan")


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else outside_name(value)


class EscapedLines(io.TextIOBase):
    """A text stream that passes every write through ``views.text.outside`` first.

    The monitor's lines (and the metrics follower's, which quote event files) go to a pipe
    through it, so that no control character from a server or a file reaches the reader.

    Args:
        stream: where the escaped text goes.
        limit: the most characters of one write (one ``print`` argument).
    """

    def __init__(self, stream: TextIO, limit: int = 4000) -> None:
        super().__init__()
        self.stream = stream
        self.limit = limit

    def write(self, text: str) -> int:
        self.stream.write(outside(text, self.limit))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class MonitorDisplay:
    """What ``PipelineMonitor`` is given: its per-change callback and where its lines go."""

    callback: Callable[[JobStatus], None] | None
    out: TextIO


@contextmanager
def monitor_display(
    job: str, metrics_log: Path | None = None, stream: TextIO | None = None
) -> Iterator[MonitorDisplay]:
    """A live view of a run on a terminal; the monitor's plain lines elsewhere.

    Args:
        job: the job's resource name.
        metrics_log: the run's JSONL metrics log (for the latest metrics).
        stream: where to draw (default stdout).

    Yields:
        The callback and output stream to hand to ``PipelineMonitor``.
    """
    stream = stream or sys.stdout
    if not interactive(stream):
        yield MonitorDisplay(None, cast(TextIO, EscapedLines(stream)))
        return
    console = Console(file=stream, force_terminal=True)
    view = MonitorView(job, metrics_log, console=console)
    # Transient: the final report replaces the view when the watch ends.
    with Live(view, console=console, refresh_per_second=4, transient=True):
        yield MonitorDisplay(view.update, view.notes)
