"""A real submit from a terminal shows what it books and asks first; --yes or no terminal don't."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import CURRENT_VERSION, REPO, TEST_PROJECT
from tests.standins.vertex import VertexStandIn
from tests.test_submit import overrides
from vertex_rlhf.cloud import registry

QUESTION = b"Submit it? [y/N]"


def submit_on_a_terminal(
    vertex: VertexStandIn, storage: str, flags: list[str], answer: bytes | None
) -> tuple[int, str]:
    """Runs ``rlhf submit dev`` with a pty as stdin and stderr; answers the question if asked.

    Returns:
        The exit status, and what the terminal showed.
    """
    environ = {**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT, "STORAGE_EMULATOR_HOST": storage}
    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "vertex_rlhf", "submit", "dev", *flags, *overrides(vertex)],
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        cwd=REPO,
        env=environ,
    )
    os.close(slave)
    shown = b""
    answered = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if answer is not None and not answered and QUESTION in shown:
                os.write(master, answer)
                answered = True
            if process.poll() is not None and not ready:
                break
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return status, shown.decode(errors="replace")


@pytest.mark.parametrize(
    ("answer", "submitted"),
    [
        (b"y\n", True),
        (b"YES\n", True),
        (b"n\n", False),
        (b"\n", False),  # the default is no
        (b"maybe\n", False),
        (b"\x04", False),  # Ctrl-D
    ],
)
def test_a_terminal_sees_what_is_booked_and_is_asked(
    vertex: VertexStandIn, storage_emulator: str, answer: bytes, submitted: bool
) -> None:
    status, shown = submit_on_a_terminal(vertex, storage_emulator, [], answer)
    assert QUESTION.decode() in shown
    digest = registry.file_digest(REPO / "compiled" / f"rlhf-tuning-{CURRENT_VERSION}.yaml")
    for booked in (
        f"in project {TEST_PROJECT} (us-central1)",
        "model:       llama-2-7b on GPU",
        "a2-ultragpu-8g",
        "reward model",
        "1410",
        f"template:    rlhf-tuning {CURRENT_VERSION} ({digest})",
        "job id:      rlhf-tuning-dev-",
    ):
        assert booked in shown
    creates = vertex.calls("POST")
    if submitted:
        assert status == 0, shown
        assert len(creates) == 1
    else:
        assert status == 1, shown
        assert "not submitted: nothing was sent" in shown
        assert creates == []
    assert "Traceback" not in shown


@pytest.mark.parametrize("flags", [["--yes"], ["--yes=1"], ["--yes=true"], ["--yes=ON"]])
def test_yes_submits_without_asking(
    vertex: VertexStandIn, storage_emulator: str, flags: list[str]
) -> None:
    status, shown = submit_on_a_terminal(vertex, storage_emulator, flags, None)
    assert status == 0, shown
    assert QUESTION.decode() not in shown
    assert len(vertex.calls("POST")) == 1


@pytest.mark.parametrize("flags", [["--yes=0"], ["--yes=no"], ["--yes="]])
def test_yes_set_to_no_still_asks(
    vertex: VertexStandIn, storage_emulator: str, flags: list[str]
) -> None:
    status, shown = submit_on_a_terminal(vertex, storage_emulator, flags, b"n\n")
    assert status == 1 and QUESTION.decode() in shown
    assert vertex.calls("POST") == []


def test_without_a_terminal_nothing_is_asked(vertex: VertexStandIn, storage_emulator: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", "submit", "dev", *overrides(vertex)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert QUESTION.decode() not in result.stderr
    assert len(vertex.calls("POST")) == 1


@pytest.mark.parametrize(
    "dry_run", ["--dry-run", "--dry-run=true", "--dry-run=YES", "--dry-run=on"]
)
def test_a_dry_run_on_a_terminal_asks_nothing_and_sends_nothing(
    vertex: VertexStandIn, storage_emulator: str, dry_run: str
) -> None:
    status, shown = submit_on_a_terminal(vertex, storage_emulator, [dry_run], None)
    assert status == 0, shown
    assert "dry run: nothing was sent" in shown and QUESTION.decode() not in shown
    assert vertex.requests == []
