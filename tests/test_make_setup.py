"""`make setup` with an interpreter too old for the project: stop, say what is needed, no .venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# Pretends to be an old Python: answers version checks as 3.8, and `-m venv DIR` makes the
# directory without a pip in it (what a venv would look like if nothing stopped it).
FAKE_PYTHON = """#!{python}
import os, sys
sys.version_info = (3, 8, 18, "final", 0)
if sys.argv[1:2] == ["--version"]:
    print("Python 3.8.18")
elif sys.argv[1:2] == ["-c"]:
    exec(sys.argv[2])
elif sys.argv[1:3] == ["-m", "venv"]:
    os.makedirs(os.path.join(sys.argv[-1], "bin"), exist_ok=True)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def make_setup(project: Path, python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "setup", f"PYTHON={python}"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=60,
    )


def needed() -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^requires-python = ">=([0-9.]+)"', text, flags=re.MULTILINE)
    assert match
    return match.group(1)


def test_an_old_python_stops_setup_with_the_version_needed(project: Path) -> None:
    fake = project / "python3.8"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable), encoding="utf-8")
    fake.chmod(0o755)
    result = make_setup(project, str(fake))
    assert result.returncode == 2  # make's status for a failed recipe
    assert f"this project needs Python {needed()} or newer" in result.stderr
    assert "is Python 3.8.18" in result.stderr
    assert not (project / ".venv").exists()
    # The fix names an interpreter on PATH that is new enough: it works as printed.
    fix = re.search(r"fix: make setup PYTHON=(\S+)", result.stderr)
    assert fix, result.stderr
    version = subprocess.run(
        [fix.group(1), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(".")
    assert tuple(map(int, version)) >= tuple(map(int, needed().split(".")))


def test_without_a_new_enough_python_on_path_the_fix_says_to_install_one(project: Path) -> None:
    fake = project / "python3.8"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable), encoding="utf-8")
    fake.chmod(0o755)
    tools = project / "tools"  # a PATH with what the Makefile uses, and no python
    tools.mkdir()
    (tools / "sed").symlink_to(shutil.which("sed") or "/usr/bin/sed")
    result = subprocess.run(
        [shutil.which("make") or "make", "-s", "--no-print-directory", "setup", f"PYTHON={fake}"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=60,
        env={**os.environ, "PATH": str(tools)},
    )
    assert result.returncode == 2
    assert f"fix: install Python {needed()} or newer" in result.stderr
    assert not (project / ".venv").exists()


def test_a_missing_interpreter_says_so(project: Path) -> None:
    result = make_setup(project, "python2.1-does-not-exist")
    assert result.returncode == 2  # make's status for a failed recipe
    assert "PYTHON=python2.1-does-not-exist is not found" in result.stderr
    assert not (project / ".venv").exists()


def test_a_failed_install_removes_the_half_made_venv(project: Path) -> None:
    # A real interpreter, but pip cannot install: nothing to install from.
    (project / "constraints.txt").write_text("pip==0.0.0-does-not-exist\n", encoding="utf-8")
    (project / "pyproject.toml").write_text(
        (REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "setup", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 2  # make's status for a failed recipe
    assert not (project / ".venv").exists()
