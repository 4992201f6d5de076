"""validate-data stops at once on Ctrl-C, and quietly when its reader goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import signalled_child


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


# Validates a dataset whose every 16 rows take 4 ms to observe (a pause per row would
# time the scheduler's wake-ups, which a busy machine makes slow); says when it began.
SLOW_VALIDATION = textwrap.dedent(
    """
    import itertools, os, sys, time
    from vertex_rlhf.data import files

    def observe(name):
        seen = itertools.count(1)

        def row(_):
            if not os.path.exists(sys.argv[2]):
                open(sys.argv[2], "w").close()
            if next(seen) % 16 == 0:
                time.sleep(0.004)
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
        (tmp_path / f"part-{index}.jsonl").write_bytes(row * 80000)  # 20 s of observing
    began = tmp_path / "began"
    args = [sys.executable, "-c", SLOW_VALIDATION, str(tmp_path / "part-*.jsonl"), str(began)]
    with signalled_child(args) as child:
        assert wait_until(began.exists, 20), "validation never began"
        child.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert child.wait(15) == 130
        assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "args",
    [
        ["validate-data", "--path", "SAMPLE", "--kind", "preference", "--json"],
        ["validate-data", "--path", "SAMPLE", "--kind", "preference"],
    ],
)
def test_a_closed_output_pipe_is_no_traceback(tmp_path: Path, args: list[str]) -> None:
    """`rlhf validate-data --json | head -1` once ended in a BrokenPipeError traceback."""
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
