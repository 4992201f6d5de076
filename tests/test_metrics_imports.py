"""The fast commands stay fast: TensorBoard and matplotlib load only for metrics work."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_PROJECT
from tests.test_cli import run

CHARTING = ("tensorboard", "matplotlib", "PIL")


@pytest.mark.parametrize("command", [["steps", "dev"], ["check", "dev"], ["steps", "local"]])
def test_fast_commands_load_no_tensorboard_or_matplotlib(command: list[str]) -> None:
    probe = (
        "import sys\n"
        "from vertex_rlhf.cli import main\n"
        f"status = main({command!r})\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {CHARTING!r})\n"
        "print('LOADED', loaded)\n"
        "sys.exit(status)\n"
    )
    result = run("-c", probe, project=TEST_PROJECT)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
