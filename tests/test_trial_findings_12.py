"""Findings of a hostile try-out of the block fast path and the parallel split (issue 12).

Each test failed before its fix: a worker process outliving a killed or failed validation,
convert-data waving through a row the validator refuses (or wording a refusal vaguely),
and a traceback when the output pipe closes early.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import signalled_child
from vertex_rlhf.data import rules


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie awaiting its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


# A parent whose worker (task 1) writes its pid, then works for a minute.
PARENT = textwrap.dedent(
    """
    import os, sys, time
    from vertex_rlhf.data.rules import run_forked

    def task(index):
        if index:
            with open(sys.argv[1] + ".tmp", "w") as out:
                out.write(str(os.getpid()))
            os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        time.sleep(60)

    run_forked(task, 2)
    """
)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_validation_leaves_no_worker_running(tmp_path: Path, signum: int) -> None:
    """A worker once read its whole range (seconds to minutes) after its parent died,
    holding the parent's stdout and stderr open."""
    pid_file = tmp_path / "worker.pid"
    with signalled_child([sys.executable, "-c", PARENT, str(pid_file)]) as parent:
        assert wait_until(pid_file.exists, 20), "the worker never started"
        worker = int(pid_file.read_text())
        try:
            parent.send_signal(signum)
            parent.wait(10)
            assert wait_until(lambda: not alive(worker), 3), "the worker outlived its parent"
        finally:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_failure_in_the_parent_stops_the_workers_at_once(tmp_path: Path) -> None:
    """Ctrl-C (or any error) in the parent's own range once waited for every worker to
    finish its range before the error could surface."""
    pid_file = tmp_path / "worker.pid"

    def task(index: int) -> None:
        if index:
            pid_file.write_text(str(os.getpid()))
            time.sleep(60)
        assert wait_until(pid_file.exists, 20)
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        rules.run_forked(task, 2)
    assert time.monotonic() - started < 10
    worker = int(pid_file.read_text())
    assert not alive(worker)


def test_workers_still_return_their_results_and_failures() -> None:
    def failing(index: int) -> int:
        if index:
            raise ValueError("boom")
        return 0

    assert rules.run_forked(lambda index: index * 10, 4) == [0, 10, 20, 30]
    with pytest.raises(RuntimeError, match="parallel validation failed: ValueError: boom"):
        rules.run_forked(failing, 2)


# Validates a dataset whose every row takes 1 ms to observe; says when it began.
SLOW_VALIDATION = textwrap.dedent(
    """
    import os, sys, time
    from vertex_rlhf.data import files

    def observe(name):
        def row(_):
            if not os.path.exists(sys.argv[2]):
                open(sys.argv[2], "w").close()
            time.sleep(0.001)
        return row

    try:
        files.validate(sys.argv[1], "preference", observe=observe)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
    """
)


@pytest.mark.parametrize("count", [1, 2])
def test_ctrl_c_stops_validate_data_at_once(tmp_path: Path, count: int) -> None:
    """Ctrl-C once waited until every file had been read (files are read in threads,
    and a thread cannot be interrupted): minutes on a large gs:// dataset."""
    row = b'{"input_text": "p", "candidate_0": "a", "candidate_1": "b", "choice": 0}\n'
    for index in range(count):
        (tmp_path / f"part-{index}.jsonl").write_bytes(row * 20000)  # 20 s of observing
    began = tmp_path / "began"
    args = [sys.executable, "-c", SLOW_VALIDATION, str(tmp_path / "part-*.jsonl"), str(began)]
    with signalled_child(args) as child:
        assert wait_until(began.exists, 20), "validation never began"
        child.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert child.wait(15) == 130
        assert time.monotonic() - started < 3


SEED_ROW = b'{"prompt": "p", "chosen": "a", "rejected": "r"}'


@pytest.mark.parametrize(
    ("line", "problem"),
    [  # what the validator says of the same line, not "(row): must be a JSON object"
        (
            b'{"prompt": "p", "chosen": "a", "chosen": "b", "rejected": "r"}',
            "in.jsonl:2: chosen: appears twice in one object",
        ),
        (
            b'{"prompt": "p", "\\u0063hosen": "a", "chosen": "b", "rejected": "r"}',
            "in.jsonl:2: chosen: appears twice",
        ),
        (
            b'{"prompt": "p", "chosen": "a", "rejected": "r", "x": NaN}',
            "in.jsonl:2: NaN is not valid JSON",
        ),
        (
            b'{"prompt": "p", "chosen": "a", "rejected": "r", "x": 1e400}',
            "in.jsonl:2: the number 1e400 is out of range",
        ),
        (
            b'{"prompt": "p\\ud800", "chosen": "a", "rejected": "r"}',
            "in.jsonl:2: holds a lone UTF-16 surrogate",
        ),
        (
            b'{"prompt": "p", "chosen": "a" "rejected": "r"}',
            "in.jsonl:2: invalid JSON at column 31: Expecting ',' delimiter",
        ),
        (
            b"\xef\xbb\xbf" + SEED_ROW,
            "in.jsonl:2: a UTF-8 byte-order mark in the middle of the file",
        ),
        (
            b'{"prompt": "p", "chosen": "a", "rejected": "r", "x": ' + b"[" * 70 + b"]" * 70 + b"}",
            "in.jsonl:2: (row): nests arrays or objects more than 64",
        ),
    ],
)
def test_convert_refuses_what_validation_refuses_in_its_words(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    """convert-data once kept the last of two equal keys silently (the validator refuses
    the row as ambiguous) and called every unparsable line "(row): must be a JSON object"."""
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.errors import DataError

    source = tmp_path / "in.jsonl"
    source.write_bytes(SEED_ROW + b"\n" + line + b"\n" + SEED_ROW + b"\n")
    with pytest.raises(DataError) as error:
        convert(str(source), str(tmp_path / "out.jsonl"), "preference")
    assert problem in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    rejects_path = tmp_path / "rejects.jsonl"
    stats = convert(
        str(source),
        str(tmp_path / "out.jsonl"),
        "preference",
        skip_invalid=True,
        rejects=str(rejects_path),
    )
    assert (stats.read, stats.rejected, stats.written["train"]) == (3, 1, 2)
    rejects = rejects_path.read_text()
    assert problem.split(": ", 1)[1] in rejects.replace('\\"', '"')


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00", "in.jsonl: is gzip-compressed"),
        (b"\xff\xfe{\x00", "in.jsonl: is UTF-16 or UTF-32 encoded"),
    ],
)
def test_convert_names_a_file_that_is_not_jsonl(tmp_path: Path, head: bytes, problem: str) -> None:
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.errors import DataError

    source = tmp_path / "in.jsonl"
    source.write_bytes(head + b"\n" + SEED_ROW + b"\n")
    for skip in (False, True):
        with pytest.raises(DataError) as error:
            convert(str(source), str(tmp_path / "out.jsonl"), "preference", skip_invalid=skip)
        assert problem in str(error.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_convert_names_a_byte_order_mark_at_the_start(tmp_path: Path) -> None:
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.errors import DataError

    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + SEED_ROW + b"\n" + SEED_ROW + b"\n")
    with pytest.raises(DataError, match=r"in\.jsonl:1: file starts with a UTF-8 byte-order mark"):
        convert(str(source), str(tmp_path / "out.jsonl"), "preference")


@pytest.mark.parametrize(
    "args",
    [
        ["validate-data", "--path", "SAMPLE", "--kind", "preference", "--json"],
        ["validate-data", "--path", "SAMPLE", "--kind", "preference"],
    ],
)
def test_a_closed_output_pipe_is_no_traceback(tmp_path: Path, args: list[str]) -> None:
    """`rlhf validate-data --json | head -1` once ended in a BrokenPipeError traceback."""
    import subprocess

    sample = tmp_path / "sample.jsonl"
    sample.write_text(
        '{"input_text": "p", "candidate_0": "a", "candidate_1": "b", "choice": 0}\n' * 50
    )
    args = [str(sample) if arg == "SAMPLE" else arg for arg in args]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        done = subprocess.run(
            [sys.executable, "-m", "vertex_rlhf", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141  # as a shell reports a process that SIGPIPE ended


def test_escaped_quotes_before_colons_do_not_cost_a_second_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Text holding JSON or code (`say \\"a\\": 1`) once sent every row through
    ``duplicate_key``'s second, slower parse: 2-3x the time of plain rows."""
    import json

    from vertex_rlhf.data import jsonl

    calls: list[bytes] = []
    original = jsonl.duplicate_key

    def counting(line: bytes) -> str:
        calls.append(line)
        return original(line)

    monkeypatch.setattr(jsonl, "duplicate_key", counting)
    text = 'config {"model": "x", "steps": 3, "lr": 1e-5, "a\\": ["b:"]}' * 3
    row = {"input_text": text, "candidate_0": 'a \\": b', "candidate_1": "c", "choice": 0}
    for line in (json.dumps(row), json.dumps(row, separators=(",", ":"))):
        assert jsonl.check_raw_row(line.encode(), row) == ("", "")
    assert calls == []


@pytest.mark.parametrize(
    "line",
    [  # keys that end in backslashes or quotes, doubled: never missed
        b'{"a\\\\": 1, "a\\\\": 2}',
        b'{"a\\\\\\\\": 1, "a\\\\\\\\":2}',
        b'{"a\\"": 1, "a\\"": 2}',
        b'{"x": "\\": \\": \\":", "a\\\\": 1, "a\\\\" : 2}',
        b'{"x": "\\\\\\": \\\\\\":", "k": 1, "k": 2}',
        b'{"x": "\\"\\t:", "k": 1, "k"\t:2}',
    ],
)
def test_duplicate_keys_next_to_backslashes_are_still_found(line: bytes) -> None:
    import json

    from vertex_rlhf.data import jsonl

    row = json.loads(line)
    assert jsonl.check_raw_row(line, row)[1].startswith("appears twice in one object"), line


def test_key_end_counting_never_misses_a_duplicate_fuzzed() -> None:
    """Random objects whose keys and texts mix backslashes, quotes, colons and JSON
    whitespace, half with a repeated key: the cheap count never hides a duplicate
    (planting a wrong backslash rule fails this within a few thousand lines)."""
    import json
    import random

    from vertex_rlhf.data import jsonl

    rng = random.Random(12)
    alphabet = ["a", "b", "\\", '"', ":", " ", "é", "\t", "{", ","]
    spaces = ["", " ", "\t", "\r", "  "]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    def value(depth: int) -> str:
        if depth < 2 and rng.random() < 0.2:
            return obj(depth + 1)
        return json.dumps(text(), ensure_ascii=rng.random() < 0.5)

    def obj(depth: int = 0) -> str:
        keys = [text() for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.5:
            keys.append(rng.choice(keys))
        members = [
            json.dumps(key, ensure_ascii=rng.random() < 0.5)
            + rng.choice(spaces)
            + ":"
            + rng.choice(spaces)
            + value(depth)
            for key in keys
        ]
        return "{" + ("," + rng.choice(spaces)).join(members) + "}"

    for _ in range(30000):
        line = obj().encode()
        expected = jsonl.duplicate_key(line)
        assert bool(jsonl.check_raw_row(line, json.loads(line))[0]) == bool(expected), line


@pytest.mark.parametrize("line_bytes", [10, 3_000, 100_000, 3_000_000])
def test_a_block_holds_about_max_bytes_whatever_the_line_length(line_bytes: int) -> None:
    """Blocks were filled 16 lines at a time: 16 lines of 10 MB (plus their parsed rows)
    took 524 MB where row-by-row reading took 83 MB."""
    taken: list[int] = []
    count = 3000 if line_bytes <= 3000 else 200

    def lines() -> object:
        for index in range(count):
            taken.append(index)
            yield b"x" * line_bytes

    max_bytes = 128 << 10
    seen = 0
    for block in rules.row_blocks(lines(), max_bytes):  # type: ignore[arg-type]
        seen += len(block)
        # lines read ahead of the block's end are lines held in memory
        assert (len(taken) - seen) == 0
        assert sum(map(len, block)) < max_bytes + 16 * min(line_bytes, 8 << 10) + line_bytes
        assert len(block) <= 1024
    assert seen == count


def test_a_block_with_one_bad_row_checks_each_raw_line_about_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A block refused by its last row was checked twice over (the fast path, then row by
    row): 1.2x the old code's time on rows with colons in their text."""
    import json

    calls: list[int] = []
    original = rules.check_raw_row

    def counting(line: bytes, row: object) -> tuple[str, str]:
        calls.append(1)
        return original(line, row)

    monkeypatch.setattr(rules, "check_raw_row", counting)
    row = {"input_text": "Human: a: b: c", "candidate_0": "x", "candidate_1": "y", "choice": 0}
    lines = [json.dumps(row).encode() + b"\n" for _ in range(300)]
    lines[250] = lines[250][:-2] + b', "choice": 1}\n'
    report = rules.new_dataset_report("d.jsonl", "preference")
    rules.check_lines(report, "d.jsonl", lines)
    assert report["errors"] == 1 and report["problems"][0].startswith("d.jsonl:251: choice:")
    assert report["layout"] == "text" and report["rows"] == 300
    assert len(calls) <= 302
