"""Large local datasets on every core: the CLI's reader, never shipped in the template.

The files of a dataset are shared out to forked processes as whole files and
line-aligned byte ranges (``plan_pieces``); each piece is checked by the single-pass
reader the pipeline ships (``rules.check_rows`` / ``rules.check_lines``), and the
pieces are merged in file order into the report (and profile) of one pass: the same
line numbers, problems, counts and layouts (tests/test_parallel_validation.py,
tests/test_parallel_files.py, scripts/check_parallel_parity.py).

It earns its keep on large files, most of all with the profile, which costs about as
much per row as parsing: on 2 cores, 300 MB of realistic rows, best of 7 rounds on a
shared machine (``make bench-data ARGS="--sizes 300 --repeat 7"``), one process read
307 MB/s (176 with the profile) and two 516 (350), against 263 for a plain
``json.loads`` loop. The pipeline's component reads in one pass (``rules.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import marshal
import mmap
import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vertex_rlhf.data.jsonl import file_format_problem
from vertex_rlhf.data.progress import counted
from vertex_rlhf.data.rules import (
    add_problem,
    check_lines,
    check_rows,
    check_whole_file,
    new_dataset_report,
    skip_bom,
)

Tally = Callable[[int, int], None]
# Progress of a piece is told every this many bytes: a bar moves while processes read.
TELL_EVERY = 128 << 10


class _TallySink:
    """A progress sink that tells a ``(bytes, rows)`` callback."""

    def __init__(self, tally: Tally) -> None:
        self.advance = tally

    def start(self, label: str, total_bytes: int) -> None:
        """Not used: a piece has no label."""


def counting(lines: Iterable[bytes], tally: Tally | None) -> Iterator[bytes]:
    """Passes lines through, telling ``tally`` the bytes and rows read as it goes."""
    return counted(lines, _TallySink(tally) if tally is not None else None, every=TELL_EVERY)


def whole_file(
    template: dict[str, Any],
    source: str,
    name: str,
    observe: Any = None,
    tally: Tally | None = None,
) -> dict[str, Any]:
    """``rules.check_whole_file``, telling ``tally`` the bytes and rows as they are read."""
    if tally is None:
        return check_whole_file(template, source, name, observe)
    part = new_dataset_report(template["dataset"], template["kind"], template["max_reported"])
    with open(name, "rb", buffering=1 << 20) as handle:
        check_lines(part, source, counting(handle, tally), observe)
    return part


def process_count(sizes: list[int], workers: int = 0, min_bytes: int = 16 << 20) -> int:
    """How many processes should read files of these sizes: enough bytes for each.

    The default ``min_bytes``: a fork, the pickled results and the merge cost 2-4 ms a
    process (measured on tiny files), and 16 MiB take about 30 ms to check (500 MB/s),
    so the overhead stays near 10% of a process's work; smaller datasets stay in one
    process.

    Args:
        sizes: the files' sizes in bytes.
        workers: the most processes; 0 means one per available core.
        min_bytes: the least bytes per process worth a fork.

    Returns:
        At least 1; 1 where there is no ``os.fork``.
    """

    if workers <= 0:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:
            workers = os.cpu_count() or 1
    if not hasattr(os, "fork"):
        return 1
    return max(1, min(workers, sum(sizes) // max(min_bytes, 1)))


def can_split(observe: Any | None) -> bool:
    """Whether rows may be observed in forked processes: no observer, or a splittable one.

    A splittable observer (a profile) has ``child()``, a recorder for one piece whose
    ``snapshot()`` is picklable, and ``absorb(snapshot)``, which adds a piece's rows as
    if it had observed them itself (called in row order).

    Args:
        observe: the per-row callback, or None.

    Returns:
        True when the observer can take part in a parallel read.
    """
    return observe is None or (hasattr(observe, "child") and hasattr(observe, "absorb"))


def line_start(name: str, offset: int) -> int:
    """The first line start at or after ``offset`` in a file (its size if none).

    Args:
        name: the file's path.
        offset: a byte offset, at least 1.

    Returns:
        The offset of that line start.
    """
    with open(name, "rb") as handle:
        handle.seek(offset - 1)
        handle.readline()  # to just past the next line end
        return handle.tell()


def is_text_file(name: str) -> bool:
    """Whether a file's first line may be JSONL (not compressed, not UTF-16).

    Args:
        name: the file's path.

    Returns:
        False when ``file_format_problem`` rejects the first line.
    """
    with open(name, "rb") as handle:
        return not file_format_problem(handle.readline())


def plan_pieces(
    names: list[str], sizes: list[int], processes: int
) -> list[list[tuple[int, int, int]]]:
    """Shares files out to processes in pieces of about equal bytes, in file order.

    The files are taken as one stream of bytes cut into ``processes`` consecutive
    shares; a cut inside a file moves to the next line start there (so a file is split
    only where a cut falls), and each share after a cut evens out what is left. A file
    whose first line shows it is not JSONL text (``is_text_file``) is never split.

    Args:
        names: the files' paths, in order.
        sizes: their sizes in bytes.
        processes: how many shares, at least 1.

    Returns:
        Per process, its pieces ``(file index, start, end)``: read in process order
        they are in file order and cover every file (an empty one as ``(i, 0, 0)``).
    """
    total = sum(sizes)
    plan: list[list[tuple[int, int, int]]] = [[]]
    goal = total // processes  # where the current share ends in the stream
    base = 0  # where the current file starts in the stream
    for index, name in enumerate(names):
        size, start, text = sizes[index], 0, None
        while True:
            end = size
            if len(plan) < processes and start < goal - base < size:
                text = is_text_file(name) if text is None else text
                end = line_start(name, goal - base) if text else size
            plan[-1].append((index, start, end))
            if len(plan) < processes and base + end >= goal:
                plan.append([])
                left = total - base - end
                goal = base + end + left // (processes - len(plan) + 1)
            if end >= size:
                break
            start = end
        base += size
    return [share for share in plan if share]


def range_lines(name: str, start: int, end: int) -> Iterable[bytes]:
    """The lines of a file between two line starts, read in large blocks.

    Args:
        name: the file's path.
        start: the first byte (a line start).
        end: the byte after the range (a line start, or the file's size).

    Returns:
        The raw lines, each with its line end (the file's last may have none).
    """
    with open(name, "rb", buffering=1 << 20) as handle:
        handle.seek(start)
        left = end - start
        for line in handle:
            yield line
            left -= len(line)
            if left <= 0:
                return


def check_piece(
    template: dict[str, Any],
    source: str,
    name: str,
    start: int,
    end: int,
    observe: Any | None = None,
    tally: Tally | None = None,
) -> tuple[dict[str, Any], int, Any]:
    """Checks one piece of a plan: a whole file (``whole_file``) or a byte range.

    A range's problems are numbered from its first line under the source ``"\\0"``, for
    ``merge_ranges`` to renumber; a file's first range reports its byte-order mark.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` it takes.
        source: the file's name as the user should see it.
        name: the file's path.
        start: the piece's first byte (a line start).
        end: the byte after it (a line start, or the file's size).
        observe: a splittable observer (see ``can_split``) or None.
        tally: told ``(bytes, rows)`` as they are read (for progress).

    Returns:
        ``(report, rows, snapshot)``: the piece's report, its rows, and its observer
        child's ``snapshot()`` (None without an observer).
    """

    recorder = observe.child() if observe is not None else None
    if start == 0 and end >= os.path.getsize(name):
        part = whole_file(template, source, name, recorder, tally)
        rows = part["rows"]
    else:
        part = new_dataset_report(template["dataset"], template["kind"], template["max_reported"])
        lines = counting(range_lines(name, start, end), tally)
        if start == 0:
            lines = itertools.chain((skip_bom(part, "\0", next(lines)),), lines)
        rows = check_rows(part, "\0", lines, 1, recorder)
    return part, rows, recorder.snapshot() if recorder is not None else None


def run_forked(task: Callable[[int], Any], count: int) -> list[Any]:
    """Runs ``task(0)`` here and ``task(1)``... ``task(count - 1)`` in forked processes.

    Forked, so that children share this process's string hashes and state; results
    come back through pipes (marshalled, or pickled where marshal cannot), in order. A
    child never outlives this process (it leaves within 0.1 s of its parent's death:
    SIGKILL, SIGTERM), and an error here (Ctrl-C included) stops the children at once
    instead of waiting for their results.

    Args:
        task: given an index, returns a picklable result.
        count: how many tasks.

    Returns:
        The results, in index order.

    Raises:
        RuntimeError: a child failed (its error is named).
    """

    def pack(value: Any) -> bytes:  # marshal is built in; pickle (1.4 ms to import) if needed
        try:
            return b"M" + marshal.dumps(value)
        except ValueError:  # a profile's snapshot
            import pickle

            return b"P" + pickle.dumps(value, protocol=4)

    def unpack(data: bytes) -> Any:
        if data[:1] == b"M":
            return marshal.loads(data[1:])
        import pickle

        return pickle.loads(data[1:])

    def orphaned(parent: int) -> None:  # a child's watch: its parent died, so it leaves
        while os.getppid() == parent:
            time.sleep(0.1)
        os._exit(1)

    parent = os.getpid()
    children = []
    results = []
    failure = ""
    try:
        for index in range(1, count):
            read_end, write_end = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise
            if pid == 0:  # the child: run, send, leave without running the parent's cleanup
                code = 0
                try:
                    threading.Thread(target=orphaned, args=(parent,), daemon=True).start()
                    os.close(read_end)
                    try:
                        data = pack((True, task(index)))
                    except BaseException as error:
                        data = pack((False, f"{type(error).__name__}: {error}"))
                    with os.fdopen(write_end, "wb") as out:
                        out.write(data)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            os.close(write_end)
            children.append((pid, read_end))
        results.append(task(0))
    except BaseException:  # their results no longer matter: stop them, then reap them
        for pid, _ in children:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, signal.SIGKILL)
        raise
    finally:  # reap every child, whatever happened here
        for pid, read_end in children:
            with os.fdopen(read_end, "rb") as source:
                data = source.read()
            os.waitpid(pid, 0)
            try:
                ok, value = unpack(data)
            except Exception:  # a child that died before answering
                ok, value = False, "a worker process died"
            if not ok and not failure:
                failure = value
            results.append(value)
    if failure:
        raise RuntimeError(f"parallel validation failed: {failure}")
    return results


def check_shares(
    template: dict[str, Any],
    files: list[tuple[str, str]],
    plan: list[list[tuple[int, int, int]]],
    observers: list[Any],
    tally: Tally | None = None,
    told: list[int] | None = None,
) -> list[tuple[dict[str, Any], int, Any]]:
    """Checks a plan's shares, one per process (forked), with ``check_piece``.

    Progress: each process writes its ``(bytes, rows)`` so far into its slot of an
    anonymous shared mapping; this process, as it reads its own share, tells ``tally``
    what all of them have added since it last told.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` each takes.
        files: (name as shown, readable path) pairs, in order.
        plan: from ``plan_pieces``.
        observers: per file, a splittable observer or None.
        tally: told ``(bytes, rows)`` as they are read, by all processes (for progress).
        told: ``[bytes, rows]`` told so far, kept up to date here (for a caller that
            has to read again after a failure).

    Returns:
        Every piece's result, in the plan's order (file order).

    Raises:
        RuntimeError: a worker failed or died (see ``run_forked``).
    """

    told = told if told is not None else [0, 0]
    slots = mmap.mmap(-1, 16 * len(plan)) if tally is not None else None

    def tell() -> None:  # what every process has read, less what was told already
        if tally is None or slots is None:
            return
        counts = struct.unpack_from(f"{2 * len(plan)}q", slots)
        nbytes, rows = sum(counts[0::2]) - told[0], sum(counts[1::2]) - told[1]
        if nbytes or rows:
            told[0], told[1] = told[0] + nbytes, told[1] + rows
            tally(nbytes, rows)

    def task(index: int) -> list[Any]:
        mine = [0, 0]

        def count(nbytes: int, rows: int) -> None:
            mine[0], mine[1] = mine[0] + nbytes, mine[1] + rows
            struct.pack_into("2q", slots, 16 * index, mine[0], mine[1])  # type: ignore[arg-type]
            if index == 0:  # this process: tell the sum
                tell()

        return [
            check_piece(
                template,
                files[i][0],
                files[i][1],
                start,
                end,
                observers[i],
                count if slots is not None else None,
            )
            for i, start, end in plan[index]
        ]

    try:
        return [result for share in run_forked(task, len(plan)) for result in share]
    finally:
        tell()  # the other processes' last counts
        if slots is not None:
            slots.close()


def beyond(tally: Tally, told: list[int]) -> Tally:
    """A tally that passes on only what goes beyond what was told already.

    Args:
        tally: told ``(bytes, rows)``.
        told: ``[bytes, rows]`` it was told before.

    Returns:
        A tally for reading again from the start.
    """
    owed = list(told)

    def count(nbytes: int, rows: int) -> None:
        skip_bytes, skip_rows = min(nbytes, owed[0]), min(rows, owed[1])
        owed[0], owed[1] = owed[0] - skip_bytes, owed[1] - skip_rows
        if nbytes > skip_bytes or rows > skip_rows:
            tally(nbytes - skip_bytes, rows - skip_rows)

    return count


def merge_ranges(
    report: dict[str, Any],
    source: str,
    results: list[tuple[dict[str, Any], int, Any]],
    observe: Any | None = None,
) -> bool:
    """Merges the checked byte ranges of one file, in order, as one pass would report them.

    Problems come back numbered within their range (source name ``"\\0"``) and are
    renumbered here. When ranges start with different layouts, a single pass would
    flag other rows, so nothing is added and the caller reads the file in one pass.

    Args:
        report: a fresh report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        results: ``check_piece``'s results for the file's ranges, in order.
        observe: a splittable observer (see ``can_split``) or None.

    Returns:
        Whether the ranges were merged into ``report``.
    """
    layouts = {part["layout"] for part, _, _ in results if part["layout"]}
    if len(layouts) > 1:
        return False
    offset = total = 0
    for part, rows, snapshot in results:
        for problem in part["problems"]:
            number, _, rest = problem[2:].partition(":")
            if len(report["problems"]) < report["max_reported"]:
                report["problems"].append(f"{source}:{int(number) + offset}:{rest}")
        report["errors"] += part["errors"]
        report["blank_lines"] += part["blank_lines"]
        offset += rows + part["blank_lines"]
        total += rows
        if observe is not None:
            observe.absorb(snapshot)
    report["layout"] = layouts.pop() if layouts else ""
    report["rows"] = total
    report["files"].append([source, total])
    if total == 0:
        add_problem(report, source, "file is empty (no rows)")
    return True


def merge_pieces(
    template: dict[str, Any],
    files: list[tuple[str, str]],
    pieces: list[tuple[int, int, int]],
    results: list[tuple[dict[str, Any], int, Any]],
    observers: list[Any],
) -> list[dict[str, Any]]:
    """Turns checked pieces into one report per file, feeding observers in file order.

    A file whose ranges cannot be merged (``merge_ranges``) is read again in one pass.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` it takes.
        files: (name as shown, readable path) pairs, in order.
        pieces: the plan's pieces, in file order.
        results: ``check_piece``'s result for each piece.
        observers: per file, a splittable observer or None.

    Returns:
        One report per file, in order.
    """

    parts = []
    pairs = zip(pieces, results)  # noqa: B905 (shipped: Python 3.8)
    for index, group in itertools.groupby(pairs, key=lambda pair: pair[0][0]):
        source, name = files[index]
        observe = observers[index]
        mine = [result for _, result in group]
        if len(mine) == 1:  # a whole file
            part, _, snapshot = mine[0]
            if observe is not None:
                observe.absorb(snapshot)
        else:
            part = new_dataset_report(
                template["dataset"], template["kind"], template["max_reported"]
            )
            if not merge_ranges(part, source, mine, observe):
                part = check_whole_file(template, source, name, observe)
        parts.append(part)
    return parts


def check_files(
    template: dict[str, Any],
    files: list[tuple[str, str]],
    observers: list[Any] | None = None,
    workers: int = 0,
    min_bytes: int = 16 << 20,
    tally: Tally | None = None,
) -> list[dict[str, Any]]:
    """Checks files as ``check_lines`` would, one after another: one report per file.

    With at least ``min_bytes`` per process, the files are read on every core:
    ``plan_pieces`` shares them out as whole files and byte ranges, forked processes
    (so string hashes agree) check the pieces, and ``merge_pieces`` gives the reports
    a single pass gives: same line numbers, problems, counts and layouts, observers fed
    in file order. Observers take part only if all can be split (``can_split``);
    otherwise, for small datasets, or when a fork fails or a worker dies, one process
    reads the files.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` each takes.
        files: (name as shown, readable path) pairs, in order.
        observers: per file, called with every row that parsed as a JSON object (for
            profiles), or None.
        workers: processes to use; 0 means one per available core, 1 one pass.
        min_bytes: the least bytes per process worth a fork.
        tally: told ``(bytes, rows)`` as they are read (for progress); bytes read
            again after a failure are not told twice.

    Returns:
        One report per file, in order (``merge_reports`` makes the dataset's).
    """

    watchers = list(observers) if observers is not None else [None] * len(files)
    sizes = [os.path.getsize(name) for _, name in files]
    processes = process_count(sizes, workers, min_bytes)
    plan: list[list[tuple[int, int, int]]] = []
    results: list[Any] = []
    told = [0, 0]
    if processes > 1 and all(map(can_split, watchers)):
        try:
            plan = plan_pieces([name for _, name in files], sizes, processes)
            results = check_shares(template, files, plan, watchers, tally, told)
        except (OSError, RuntimeError):  # no fork (limits), a worker died: one pass decides
            plan = []
    if plan:
        pieces = [piece for share in plan for piece in share]
        return merge_pieces(template, files, pieces, results, watchers)
    if tally is not None and told != [0, 0]:
        tally = beyond(tally, told)
    return [
        whole_file(template, source, name, observe, tally)
        for (source, name), observe in zip(files, watchers)  # noqa: B905 (Python 3.8)
    ]
