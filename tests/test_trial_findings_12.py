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
