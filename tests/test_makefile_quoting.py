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


def cli_argv(argv: list[str]) -> list[str]:
    """What the CLI's door makes of the arguments make passed (before argparse)."""
    from vertex_rlhf import cli
    from vertex_rlhf.config import values

    return values.expand_argv(argv, cli.yes_no_flags(cli.build_parser()))


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
    assert run_make(tmp_path, "submit", VERSION=value, JOB_ID=value, DRY_RUN=value) == [
        "submit",
        "dev",
        "--version",
        value,
        f"--dry-run={value}",
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


LISTS = [
    ("a=1 b=2", ["a=1", "b=2"]),
    ("training.instruction='Summarize briefly'", ["training.instruction=Summarize briefly"]),
    ('training.instruction="Say \\"hi\\""  x=1', ['training.instruction=Say "hi"', "x=1"]),
    ("  a=1\tb=2\nc=3\n", ["a=1", "b=2", "c=3"]),
    (
        "a=$(shell touch {mark}) c=x;touch {mark}",
        ["a=$(shell", "touch", "{mark})", "c=x;touch", "{mark}"],
    ),
    ("d=`touch {mark}` e=* f=$HOME", ["d=`touch", "{mark}`", "e=*", "f=$HOME"]),
    ("g='$$(touch {mark})'", ["g=$$(touch {mark})"]),
]


@pytest.mark.parametrize(("text", "words"), LISTS)
@pytest.mark.parametrize(
    "target", ["check", "steps", "validate-data", "plan", "submit", "publish", "versions", "runs"]
)
def test_list_variables_split_with_shell_quoting_and_never_run(
    tmp_path: Path, target: str, text: str, words: list[str]
) -> None:
    mark = tmp_path / "injected"
    overrides = text.format(mark=mark)
    argv = run_make(tmp_path, target, ENV="dev", OVERRIDES=overrides)
    assert argv[:3] == [target, "dev", "--shell-words"]  # the raw text as one argument
    expected = [w.format(mark=mark) for w in words]
    assert cli_argv(argv)[2 : 2 + len(expected)] == expected
    assert not mark.exists()


@pytest.mark.parametrize(("text", "words"), LISTS)
def test_args_of_convert_and_bench(tmp_path: Path, text: str, words: list[str]) -> None:
    mark = tmp_path / "injected"
    args = text.format(mark=mark)
    argv = run_make(tmp_path, "convert-data", IN="in.jsonl", OUT="out.jsonl", ARGS=args)
    expected = [w.format(mark=mark) for w in words]
    assert cli_argv(argv) == [
        "convert-data",
        "in.jsonl",
        "out.jsonl",
        "--kind",
        "preference",
        *expected,
    ]
    argv = run_make(tmp_path, "bench-data", ARGS=args)
    assert argv[:3] == ["-m", "vertex_rlhf.config.values", "scripts/bench_data.py"]
    from vertex_rlhf.config import values

    assert values.split_words(argv[3], "ARGS") == expected
    assert not mark.exists()


def test_jobs_split_with_shell_quoting(tmp_path: Path) -> None:
    from vertex_rlhf import cli

    argv = run_make(tmp_path, "compare", JOBS="a 'b' \"c\"")
    args = cli.parse(cli.build_parser(), argv)
    assert args.jobs_text == ["a", "b", "c"]


@pytest.mark.parametrize("text", ["training.instruction='unclosed", 'a="b'])
def test_unbalanced_quotes_are_a_coded_error(tmp_path: Path, text: str) -> None:
    result = subprocess.run(
        [
            shutil.which("make") or "make",
            "-s",
            "--no-print-directory",
            "steps",
            f"OVERRIDES={text}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "error[CONFIG_002]: the text of OVERRIDES, ARGS or JOBS" in result.stderr
    assert "close every quote" in result.stderr and "Traceback" not in result.stderr


YES_NO = [(w, True) for w in ("1", "true", "TRUE", "yes", "Yes", "on", "ON")] + [
    (w, False) for w in ("0", "false", "False", "no", "NO", "off", "Off", "")
]


@pytest.mark.parametrize(("text", "meant"), YES_NO)
@pytest.mark.parametrize(
    ("variable", "flag"), [("DRY_RUN", "--dry-run"), ("WAIT", "--wait"), ("YES", "--yes")]
)
def test_yes_no_variables_mean_the_same_in_make_and_the_cli(
    tmp_path: Path, variable: str, flag: str, text: str, meant: bool
) -> None:
    argv = run_make(tmp_path, "submit", **{variable: text})
    expanded = cli_argv(argv)
    assert (flag in expanded) is meant
    from vertex_rlhf import cli

    args = cli.parse(cli.build_parser(), argv)
    assert getattr(args, flag[2:].replace("-", "_")) is meant


@pytest.mark.parametrize("text", ["2", "y", "n", "maybe", "tru", "-1", "yes please"])
@pytest.mark.parametrize("variable", ["DRY_RUN", "WAIT", "YES"])
def test_other_yes_no_values_are_refused_before_anything_runs(variable: str, text: str) -> None:
    result = subprocess.run(
        [
            shutil.which("make") or "make",
            "-s",
            "--no-print-directory",
            "submit",
            f"{variable}={text}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("error[CONFIG_002]: "), result.stderr
    assert f"(make {variable}): {text!r} is not a yes/no value" in result.stderr
    assert "1/0, true/false, yes/no or on/off" in result.stderr


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "on", "On"])
def test_make_submit_with_any_yes_word_is_a_dry_run(text: str) -> None:
    import os

    result = subprocess.run(
        [
            shutil.which("make") or "make",
            "-s",
            "--no-print-directory",
            "submit",
            "ENV=prod",
            f"DRY_RUN={text}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": "rlhf-test-project"},
    )
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was sent" in result.stderr
    assert "pipelineJobId=rlhf-tuning-prod-" in result.stdout
