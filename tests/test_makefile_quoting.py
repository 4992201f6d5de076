"""Make variables reach the CLI as literal arguments: never as shell or make code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

HOSTILE = [
    "abc;touch {mark}",
    "$(shell touch {mark})",
    "`touch {mark}`",
    "$$(touch {mark})",
    'it\'s "quoted" $HOME && touch {mark}',
]


def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in for .venv/bin (rlhf and python) that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    argv = tmp_path / "argv"
    for name in ("rlhf", "python"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > '{argv}'\n")
        script.chmod(0o755)
    return bin_dir, argv


def run_make(tmp_path: Path, target: str, **variables: str) -> list[str]:
    bin_dir, argv = recorder(tmp_path)
    argv.unlink(missing_ok=True)
    result = subprocess.run(
        [
            shutil.which("make") or "make",
            "-s",
            "--no-print-directory",
            target,
            f"BIN={bin_dir}",
            f"RLHF={bin_dir}/rlhf",
            *(f"{k}={v}" for k, v in variables.items()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return argv.read_bytes().decode().split("\0")[:-1]


@pytest.mark.parametrize("payload", HOSTILE)
def test_single_value_variables_are_one_literal_argument(tmp_path: Path, payload: str) -> None:
    mark = tmp_path / "injected"
    value = payload.format(mark=mark)
    assert run_make(tmp_path, "monitor", JOB=value, ENV=value) == [
        "monitor",
        value,
        "--env",
        value,
    ]
    assert run_make(tmp_path, "cancel", JOB=value) == ["cancel", value, "--env", "dev"]
    assert run_make(tmp_path, "submit", VERSION=value, JOB_ID=value, DRY_RUN="1") == [
        "submit",
        "dev",
        "--version",
        value,
        "--dry-run",
        "--job-id",
        value,
    ]
    assert run_make(tmp_path, "convert-data", IN=value, OUT=value, KIND=value) == [
        "convert-data",
        value,
        value,
        "--kind",
        value,
    ]
    assert not mark.exists()


@pytest.mark.parametrize(
    "target", ["check", "steps", "validate-data", "submit", "publish", "versions", "runs"]
)
def test_list_variables_split_on_whitespace_only(tmp_path: Path, target: str) -> None:
    mark = tmp_path / "injected"
    overrides = f"a=1 b=$(shell touch {mark}) c=x;touch {mark} d='q' e=*"
    argv = run_make(tmp_path, target, ENV="dev", OVERRIDES=overrides)
    assert argv[:2] == [target, "dev"]
    assert argv[2 : 2 + len(overrides.split())] == overrides.split()
    assert not mark.exists()


def test_args_of_convert_and_bench(tmp_path: Path) -> None:
    mark = tmp_path / "injected"
    args = f"--seed 7 --eval-out x;touch {mark}"
    argv = run_make(tmp_path, "convert-data", IN="in.jsonl", OUT="out.jsonl", ARGS=args)
    assert argv == ["convert-data", "in.jsonl", "out.jsonl", "--kind", "preference", *args.split()]
    assert run_make(tmp_path, "bench-data", ARGS=args) == ["scripts/bench_data.py", *args.split()]
    assert not mark.exists()
