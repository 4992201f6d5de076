"""Forked readers never outlive the validation that started them, and answer in order."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import signalled_child
from vertex_rlhf.data import parallel


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
    from vertex_rlhf.data.parallel import run_forked

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
        parallel.run_forked(task, 2)
    assert time.monotonic() - started < 10
    worker = int(pid_file.read_text())
    assert not alive(worker)


def test_workers_still_return_their_results_and_failures() -> None:
    def failing(index: int) -> int:
        if index:
            raise ValueError("boom")
        return 0

    assert parallel.run_forked(lambda index: index * 10, 4) == [0, 10, 20, 30]
    with pytest.raises(RuntimeError, match="parallel validation failed: ValueError: boom"):
        parallel.run_forked(failing, 2)
